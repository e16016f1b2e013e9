/* draw.c: text on images (captions of contact sheets and saliency strips)
 * and the training-curve plot, through cairo when the build has it
 * (RC_HAVE_CAIRO). Without cairo the images are written without captions
 * (their sidecar JSON says the same things) and there is no plot
 * (tools/plot_training.py draws one from metrics.jsonl).
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/common.h"
#include "recompose/viz.h"

#ifdef RC_HAVE_CAIRO
#include <cairo.h>

#define RC_PI 3.14159265358979323846

int rc_viz_can_draw_text(void) { return 1; }

/* rgb [h][w][3] <-> a cairo RGB24 surface (one uint32 xRGB per pixel). */
static cairo_surface_t *surface_from_rgb(int w, int h, const uint8_t *rgb) {
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) return s;
    cairo_surface_flush(s);
    unsigned char *data = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    for (int y = 0; y < h; y++) {
        uint32_t *row = (uint32_t *)(data + (size_t)y * stride);
        const uint8_t *p = rgb + (size_t)y * w * 3;
        for (int x = 0; x < w; x++, p += 3)
            row[x] = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
    }
    cairo_surface_mark_dirty(s);
    return s;
}

static void surface_to_rgb(cairo_surface_t *s, int w, int h, uint8_t *rgb) {
    cairo_surface_flush(s);
    const unsigned char *data = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    for (int y = 0; y < h; y++) {
        const uint32_t *row = (const uint32_t *)(data + (size_t)y * stride);
        uint8_t *p = rgb + (size_t)y * w * 3;
        for (int x = 0; x < w; x++, p += 3) {
            p[0] = (uint8_t)(row[x] >> 16);
            p[1] = (uint8_t)(row[x] >> 8);
            p[2] = (uint8_t)row[x];
        }
    }
}

static void set_font(cairo_t *cr, int bold, double size) {
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD
                                : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

/* Text whose top-left corner is at (x, y). */
static void text_at(cairo_t *cr, double x, double y, const char *s) {
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    cairo_move_to(cr, x, y + fe.ascent);
    cairo_show_text(cr, s);
}

int rc_draw_texts(int width, int height, uint8_t *rgb, const rc_text *texts,
                  int n) {
    cairo_surface_t *s = surface_from_rgb(width, height, rgb);
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    for (int i = 0; i < n; i++) {
        set_font(cr, texts[i].bold, 12);
        text_at(cr, texts[i].x, texts[i].y, texts[i].text);
    }
    cairo_destroy(cr);
    surface_to_rgb(s, width, height, rgb);
    cairo_surface_destroy(s);
    return 0;
}

/* ---- the training curves ------------------------------------------------------ */

typedef struct {
    double *step, *value;
    int n, cap;
} series;

static void series_add(series *s, double step, double value) {
    if (!(value > 0) || !isfinite(value)) return; /* a log scale */
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->step = rc_xrealloc(s->step, (size_t)s->cap * sizeof(double));
        s->value = rc_xrealloc(s->value, (size_t)s->cap * sizeof(double));
    }
    s->step[s->n] = step;
    s->value[s->n++] = value;
}

static void series_free(series *s) {
    free(s->step);
    free(s->value);
}

/* metrics.jsonl: "loss" of every line, "val_loss" where present. A line
 * that does not parse (a run killed mid-write) is passed over. */
static int read_curves(const char *path, series *loss, series *val) {
    FILE *f = fopen(path, "r");
    if (!f) return rc_set_error("cannot open %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *j = json_loads(line, 0, NULL);
        if (!j) continue;
        double step = json_number_value(json_object_get(j, "step"));
        series_add(loss, step, json_number_value(json_object_get(j, "loss")));
        json_t *v = json_object_get(j, "val_loss");
        if (v) series_add(val, step, json_number_value(v));
        json_decref(j);
    }
    free(line);
    fclose(f);
    return 0;
}

/* A round tick spacing (1, 2 or 5 x 10^k) giving about `want` ticks. */
static double nice_step(double span, int want) {
    double raw = span / want, p = pow(10, floor(log10(raw)));
    double m = raw / p;
    return p * (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10);
}

typedef struct {
    double x0, y0, w, h;          /* plot area in pixels */
    double s0, s1, ly0, ly1;      /* step range, log10 loss range */
} frame;

static double px(const frame *f, double step) {
    return f->x0 + (step - f->s0) / (f->s1 - f->s0) * f->w;
}
static double py(const frame *f, double v) {
    return f->y0 + f->h - (log10(v) - f->ly0) / (f->ly1 - f->ly0) * f->h;
}

static void draw_axes(cairo_t *cr, const frame *f) {
    char buf[32];
    set_font(cr, 0, 11);
    cairo_set_line_width(cr, 1);
    /* steps: round values */
    double dx = nice_step(f->s1 - f->s0, 6);
    for (double s = ceil(f->s0 / dx) * dx; s <= f->s1 + 1e-9; s += dx) {
        double x = floor(px(f, s)) + 0.5;
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, x, f->y0);
        cairo_line_to(cr, x, f->y0 + f->h);
        cairo_stroke(cr);
        snprintf(buf, sizeof buf, "%.0f", s);
        cairo_text_extents_t te;
        cairo_text_extents(cr, buf, &te);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        text_at(cr, x - te.width / 2, f->y0 + f->h + 4, buf);
    }
    /* loss: 1, 2, 5 x 10^k over a decade or more; within less than a
     * decade, round values of a linear spacing (still on the log axis) */
    double ticks[64];
    int n = 0;
    if (f->ly1 - f->ly0 >= 1) {
        for (int k = (int)floor(f->ly0); k <= (int)ceil(f->ly1) && n < 60; k++)
            for (int m = 1; m <= 5; m += m == 1 ? 1 : 3) ticks[n++] = m * pow(10, k);
    } else {
        double lo = pow(10, f->ly0), hi = pow(10, f->ly1);
        double dy = nice_step(hi - lo, 5);
        for (double v = ceil(lo / dy) * dy; v <= hi && n < 60; v += dy) ticks[n++] = v;
    }
    for (int i = 0; i < n; i++) {
        double v = ticks[i], l = log10(v);
        if (l < f->ly0 - 1e-9 || l > f->ly1 + 1e-9) continue;
        double y = floor(py(f, v)) + 0.5;
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, f->x0, y);
        cairo_line_to(cr, f->x0 + f->w, y);
        cairo_stroke(cr);
        snprintf(buf, sizeof buf, "%.4g", v);
        cairo_text_extents_t te;
        cairo_text_extents(cr, buf, &te);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        text_at(cr, f->x0 - te.width - 6, y - 7, buf);
    }
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_rectangle(cr, f->x0 + 0.5, f->y0 + 0.5, f->w, f->h);
    cairo_stroke(cr);
    text_at(cr, f->x0 + f->w / 2 - 12, f->y0 + f->h + 20, "step");
    cairo_save(cr);
    cairo_move_to(cr, 16, f->y0 + f->h / 2 + 36);
    cairo_rotate(cr, -RC_PI / 2);
    cairo_show_text(cr, "loss (log scale)");
    cairo_restore(cr);
}

static void draw_series(cairo_t *cr, const frame *f, const series *s,
                        double r, double g, double b, int dots) {
    cairo_set_source_rgb(cr, r, g, b);
    cairo_set_line_width(cr, dots ? 2 : 1.5);
    for (int i = 0; i < s->n; i++) {
        double x = px(f, s->step[i]), y = py(f, s->value[i]);
        if (i == 0) cairo_move_to(cr, x, y);
        else cairo_line_to(cr, x, y);
    }
    cairo_stroke(cr);
    for (int i = 0; dots && i < s->n; i++) {
        cairo_arc(cr, px(f, s->step[i]), py(f, s->value[i]), 3, 0, 2 * RC_PI);
        cairo_fill(cr);
    }
}

static void legend_entry(cairo_t *cr, double x, double y, const char *label,
                         double r, double g, double b) {
    cairo_set_source_rgb(cr, r, g, b);
    cairo_set_line_width(cr, 2);
    cairo_move_to(cr, x, y + 7);
    cairo_line_to(cr, x + 20, y + 7);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text_at(cr, x + 26, y, label);
}

static void draw_curves(cairo_t *cr, int W, int H, const series *loss,
                        const series *val, const char *title) {
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    frame f = {70, 34, W - 90, H - 84, 0, 1, 0, 1};
    double lo = INFINITY, hi = -INFINITY;
    const series *all[2] = {loss, val};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < all[k]->n; i++) {
            lo = fmin(lo, all[k]->value[i]);
            hi = fmax(hi, all[k]->value[i]);
            f.s1 = fmax(f.s1, all[k]->step[i]);
        }
    f.ly0 = log10(lo) - 0.05;
    f.ly1 = log10(hi) + 0.05;
    if (f.ly1 - f.ly0 < 0.3) { /* a flat curve still gets a readable scale */
        double mid = (f.ly0 + f.ly1) / 2;
        f.ly0 = mid - 0.15;
        f.ly1 = mid + 0.15;
    }
    draw_axes(cr, &f);
    draw_series(cr, &f, loss, 0.12, 0.35, 0.75, 0);
    draw_series(cr, &f, val, 0.90, 0.45, 0.05, 1);
    set_font(cr, 1, 13);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text_at(cr, f.x0, 10, title);
    set_font(cr, 0, 11);
    char label[64];
    snprintf(label, sizeof label, "training loss (last %.4g)",
             loss->n ? loss->value[loss->n - 1] : NAN);
    legend_entry(cr, f.x0 + f.w - 220, f.y0 + 8, label, 0.12, 0.35, 0.75);
    if (val->n) {
        snprintf(label, sizeof label, "validation loss (last %.4g)",
                 val->value[val->n - 1]);
        legend_entry(cr, f.x0 + f.w - 220, f.y0 + 26, label, 0.90, 0.45, 0.05);
    }
}

int rc_plot_training(const char *metrics_path, const char *png_path,
                     const char *title) {
    series loss = {0}, val = {0};
    if (read_curves(metrics_path, &loss, &val) != 0) return -1;
    int status = 0;
    if (loss.n == 0) {
        status = rc_set_error("%s: no loss to plot yet", metrics_path);
    } else {
        enum { W = 720, H = 420 };
        cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
        cairo_t *cr = cairo_create(s);
        draw_curves(cr, W, H, &loss, &val, title);
        cairo_destroy(cr);
        uint8_t *rgb = rc_xmalloc((size_t)W * H * 3);
        surface_to_rgb(s, W, H, rgb);
        cairo_surface_destroy(s);
        char tmp[2048];
        snprintf(tmp, sizeof tmp, "%s.tmp", png_path);
        status = rc_png_write(tmp, W, H, 3, rgb);
        if (status == 0 && rename(tmp, png_path) != 0)
            status = rc_set_error("cannot rename %s to %s: %s", tmp, png_path,
                                  strerror(errno));
        if (status != 0) remove(tmp);
        free(rgb);
    }
    series_free(&loss);
    series_free(&val);
    return status;
}

#else /* no cairo */

int rc_viz_can_draw_text(void) { return 0; }

int rc_draw_texts(int width, int height, uint8_t *rgb, const rc_text *texts,
                  int n) {
    (void)width, (void)height, (void)rgb, (void)texts, (void)n;
    return 1;
}

int rc_plot_training(const char *metrics_path, const char *png_path,
                     const char *title) {
    (void)metrics_path, (void)title;
    return rc_set_error("%s: this build has no cairo to draw with (install "
                        "libcairo2-dev and rebuild; tools/plot_training.py "
                        "plots metrics.jsonl)", png_path);
}

#endif
