#!/usr/bin/env bash
# The whole tiny preset (as tools/quickstart.sh trains it) against a quality
# goal: ridge and kNN probe R^2 >= RC_LEARN_MIN_R2 (default 0.8) for each of
# dx, dy and dtheta on held-out clips, on top of test_learning's checks
# (measured at seeds 1-5: 0.95-0.99; docs/RESULTS.md section 7). Long:
# enabled with RC_LONG_TESTS=1.
export RC_LEARN_STEPS=$(grep -E '^steps *=' configs/tiny.ini | head -n1 | sed 's/.*= *//')
export RC_LEARN_MIN_R2=${RC_LEARN_MIN_R2:-0.8}
exec bash "$(dirname "$0")/test_learning.sh"
