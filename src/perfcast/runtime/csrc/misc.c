/* Gathers, small fused maps and scans: embedding, gather, rope and cumsum. */
#include "pc_internal.h"

int pc_embedding(const float* table, const int64_t* idx, float* out, int64_t n, int64_t dim,
                 int64_t vocab) {
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= vocab) return PC_ERR_INDEX;
    int nt = pc_nt(n * dim, 4 * PC_GRAIN);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t i = 0; i < n; i++)
        memcpy(out + i * dim, table + idx[i] * dim, (size_t)dim * sizeof(float));
    return PC_OK;
}

int pc_rope(const float* x, const float* cos_t, const float* sin_t, float* out, int64_t rows,
            int64_t d, int64_t cs_rows) {
    if (d % 2 || cs_rows <= 0) return PC_ERR_ARG;
    int64_t h = d / 2;
    int nt = pc_nt(rows * d, PC_GRAIN);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float* PC_R xr = x + r * d;
        const float* PC_R c = cos_t + (r % cs_rows) * d;
        const float* PC_R s = sin_t + (r % cs_rows) * d;
        float* PC_R o = out + r * d;
        for (int64_t j = 0; j < h; j++) o[j] = xr[j] * c[j] - xr[j + h] * s[j];
        for (int64_t j = 0; j < h; j++) o[j + h] = xr[j + h] * c[j + h] + xr[j] * s[j + h];
    }
    return PC_OK;
}

/* x, out viewed as [outer, len, inner]: running sums along the middle dimension; float32
   accumulates in double (as ATen does on the CPU), int64 exactly. */
int pc_cumsum(int dtype, const void* x, void* out, int64_t outer, int64_t len, int64_t inner) {
    if (dtype != PC_F32 && dtype != PC_I64) return PC_ERR_ARG;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * len * inner + i;
            if (dtype == PC_F32) {
                const float* xs = (const float*)x;
                float* os = (float*)out;
                double acc = 0.0;
                for (int64_t j = 0; j < len; j++) {
                    acc += xs[base + j * inner];
                    os[base + j * inner] = (float)acc;
                }
            } else {
                const int64_t* xs = (const int64_t*)x;
                int64_t* os = (int64_t*)out;
                int64_t acc = 0;
                for (int64_t j = 0; j < len; j++) {
                    acc += xs[base + j * inner];
                    os[base + j * inner] = acc;
                }
            }
        }
    }
    return PC_OK;
}

/* x [outer, len, inner], idx [outer, m, inner], out [outer, m, inner] of itemsize-byte
   elements: out[o, j, i] = x[o, idx[o, j, i], i] (torch.gather); idx checked against len. */
int pc_gather(int itemsize, const void* x, const int64_t* idx, void* out, int64_t outer,
              int64_t len, int64_t m, int64_t inner) {
    int64_t n = outer * m * inner;
    for (int64_t k = 0; k < n; k++)
        if (idx[k] < 0 || idx[k] >= len) return PC_ERR_INDEX;
    const char* xs = (const char*)x;
    char* os = (char*)out;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < m; j++)
            for (int64_t i = 0; i < inner; i++) {
                int64_t k = (o * m + j) * inner + i;
                memcpy(os + k * itemsize, xs + ((o * len + idx[k]) * inner + i) * itemsize,
                       (size_t)itemsize);
            }
    return PC_OK;
}
