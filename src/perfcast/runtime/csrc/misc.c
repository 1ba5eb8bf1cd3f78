/* Gathers and small fused maps: embedding and rope. */
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
