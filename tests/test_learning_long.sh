#!/usr/bin/env bash
# The whole tiny preset (as tools/quickstart.sh trains it) against the
# quality goal of issue 2. Long: enabled with RC_LONG_TESTS=1.
export RC_LEARN_STEPS=$(grep -E '^steps *=' configs/tiny.ini | head -n1 | sed 's/.*= *//')
export RC_LEARN_MIN_R2=${RC_LEARN_MIN_R2:-0.8}
exec bash "$(dirname "$0")/test_learning.sh"
