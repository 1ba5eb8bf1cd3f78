/* Row-wise kernels: softmax, layer_norm, rms_norm, reduce. One row is handled by one
 * thread; sums use `omp simd` reductions (a fixed vector order, independent of threads). */
#include "pc_internal.h"

#define PC_ROW_GRAIN 8192 /* elements of rows per thread before threading */

PC_INLINE float row_max(const float* PC_R x, int64_t n) {
    float m = -INFINITY;
    #pragma omp simd reduction(max : m)
    for (int64_t j = 0; j < n; j++) m = x[j] > m ? x[j] : m;
    return m;
}

PC_INLINE float row_sum(const float* PC_R x, int64_t n) {
    float s = 0.0f;
    #pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; j++) s += x[j];
    return s;
}

static void softmax_row(const float* PC_R x, float* PC_R o, int64_t n) {
    float m = row_max(x, n);
    float s = 0.0f;
    #pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; j++) {
        float e = pc_exp(x[j] - m);
        o[j] = e;
        s += e;
    }
    float inv = 1.0f / s;
    for (int64_t j = 0; j < n; j++) o[j] *= inv;
}

int pc_softmax(const float* x, float* out, int64_t rows, int64_t cols) {
    if (rows <= 0 || cols <= 0) return PC_OK;
    int nt = pc_nt(rows * cols, PC_ROW_GRAIN);
    if (nt > rows) nt = (int)rows;
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t r = 0; r < rows; r++) softmax_row(x + r * cols, out + r * cols, cols);
    return PC_OK;
}

static void layer_norm_row(const float* PC_R x, const float* PC_R w, const float* PC_R b,
                           float* PC_R o, int64_t n, float eps) {
    float mean = row_sum(x, n) / (float)n;
    float v = 0.0f;
    #pragma omp simd reduction(+ : v)
    for (int64_t j = 0; j < n; j++) { float d = x[j] - mean; v += d * d; }
    float rstd = 1.0f / sqrtf(v / (float)n + eps);
    if (w && b) {
        for (int64_t j = 0; j < n; j++) o[j] = (x[j] - mean) * rstd * w[j] + b[j];
    } else if (w) {
        for (int64_t j = 0; j < n; j++) o[j] = (x[j] - mean) * rstd * w[j];
    } else if (b) {
        for (int64_t j = 0; j < n; j++) o[j] = (x[j] - mean) * rstd + b[j];
    } else {
        for (int64_t j = 0; j < n; j++) o[j] = (x[j] - mean) * rstd;
    }
}

int pc_layer_norm(const float* x, const float* w, const float* b, float* out, int64_t rows,
                  int64_t cols, double eps) {
    if (rows <= 0 || cols <= 0) return PC_OK;
    float e = (float)eps;
    int nt = pc_nt(rows * cols, PC_ROW_GRAIN);
    if (nt > rows) nt = (int)rows;
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t r = 0; r < rows; r++)
        layer_norm_row(x + r * cols, w, b, out + r * cols, cols, e);
    return PC_OK;
}

static void rms_norm_row(const float* PC_R x, const float* PC_R w, float* PC_R o, int64_t n,
                         float eps) {
    float ss = 0.0f;
    #pragma omp simd reduction(+ : ss)
    for (int64_t j = 0; j < n; j++) ss += x[j] * x[j];
    float r = 1.0f / sqrtf(ss / (float)n + eps);
    if (w) for (int64_t j = 0; j < n; j++) o[j] = x[j] * r * w[j];
    else for (int64_t j = 0; j < n; j++) o[j] = x[j] * r;
}

int pc_rms_norm(const float* x, const float* w, float* out, int64_t rows, int64_t cols,
                double eps) {
    if (rows <= 0 || cols <= 0) return PC_OK;
    float e = (float)eps;
    int nt = pc_nt(rows * cols, PC_ROW_GRAIN);
    if (nt > rows) nt = (int)rows;
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t r = 0; r < rows; r++) rms_norm_row(x + r * cols, w, out + r * cols, cols, e);
    return PC_OK;
}

int pc_reduce(int op, const float* x, float* out, int64_t outer, int64_t len, int64_t inner) {
    if (op != PC_RED_SUM && op != PC_RED_MEAN && op != PC_RED_MAX) return PC_ERR_ARG;
    if (outer <= 0 || inner <= 0) return PC_OK;
    if (len <= 0) {
        float v = op == PC_RED_MAX ? -INFINITY : (op == PC_RED_MEAN ? NAN : 0.0f);
        for (int64_t i = 0; i < outer * inner; i++) out[i] = v;
        return PC_OK;
    }
    float scale = op == PC_RED_MEAN ? 1.0f / (float)len : 1.0f;
    if (inner == 1) { /* contiguous rows */
        int nt = pc_nt(outer * len, PC_ROW_GRAIN);
        if (nt > outer) nt = (int)outer;
        #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (int64_t o = 0; o < outer; o++) {
            const float* r = x + o * len;
            if (op == PC_RED_MAX) {
                float m = -INFINITY;
                int nan = 0;
                for (int64_t j = 0; j < len; j++) { m = r[j] > m ? r[j] : m; nan |= r[j] != r[j]; }
                out[o] = nan ? NAN : m;
            } else {
                out[o] = row_sum(r, len) * scale;
            }
        }
        return PC_OK;
    }
    /* strided: accumulate whole inner rows, vectorized across `inner` */
    int64_t work = outer * len * inner;
    int nt = pc_nt(work, PC_ROW_GRAIN);
    int64_t units = outer * ((inner + 255) / 256);
    if (nt > units) nt = (int)units;
    int64_t chunks = (inner + 255) / 256;
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t u = 0; u < outer * chunks; u++) {
        int64_t o = u / chunks, c0 = (u % chunks) * 256;
        int64_t cn = inner - c0 < 256 ? inner - c0 : 256;
        const float* PC_R base = x + o * len * inner + c0;
        float* PC_R dst = out + o * inner + c0;
        if (op == PC_RED_MAX) {
            for (int64_t i = 0; i < cn; i++) dst[i] = base[i];
            for (int64_t j = 1; j < len; j++) {
                const float* PC_R r = base + j * inner;
                for (int64_t i = 0; i < cn; i++) dst[i] = PC_MAX_NAN(dst[i], r[i]);
            }
        } else {
            for (int64_t i = 0; i < cn; i++) dst[i] = base[i];
            for (int64_t j = 1; j < len; j++) {
                const float* PC_R r = base + j * inner;
                for (int64_t i = 0; i < cn; i++) dst[i] += r[i];
            }
            if (scale != 1.0f) for (int64_t i = 0; i < cn; i++) dst[i] *= scale;
        }
    }
    return PC_OK;
}
