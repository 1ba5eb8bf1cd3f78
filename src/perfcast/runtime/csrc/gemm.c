/* GEMM through the BLAS (cblas_sgemm) with a fused epilogue (row bias, activation). */
#include "pc_internal.h"

#include <limits.h>

/* out[r, :] = act(out[r, :] + beta * c[:]) or act(out[r, :]) for `rows` rows of n. */
static void epilogue(float* out, const float* c, float beta, int act, int64_t rows, int64_t n) {
    int64_t total = rows * n;
    int heavy = act == PC_ACT_GELU || act == PC_ACT_GELU_TANH || act == PC_ACT_SILU;
    int nt = pc_nt(total, heavy ? PC_GRAIN / 8 : PC_GRAIN);
    if (nt > rows) nt = (int)rows;
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        float* PC_R o = out + r * n;
        if (c) {
            const float* PC_R cr = c;
            if (beta == 1.0f) {
                switch (act) {
                case PC_ACT_NONE: for (int64_t j = 0; j < n; j++) o[j] += cr[j]; break;
                case PC_ACT_RELU: for (int64_t j = 0; j < n; j++) o[j] = pc_relu(o[j] + cr[j]); break;
                case PC_ACT_GELU: for (int64_t j = 0; j < n; j++) o[j] = pc_gelu(o[j] + cr[j]); break;
                case PC_ACT_GELU_TANH:
                    for (int64_t j = 0; j < n; j++) o[j] = pc_gelu_tanh(o[j] + cr[j]);
                    break;
                case PC_ACT_SILU: for (int64_t j = 0; j < n; j++) o[j] = pc_silu(o[j] + cr[j]); break;
                default: break;
                }
            } else {
                for (int64_t j = 0; j < n; j++) o[j] += beta * cr[j];
                pc_act_inplace(act, o, n);
            }
        } else {
            pc_act_inplace(act, o, n);
        }
    }
}

int pc_gemm(const float* a, const float* b, const float* c, float* out, int64_t batch,
            int64_t m, int64_t n, int64_t k, int trans_b, double alpha, double beta, int act,
            int64_t a_bs, int64_t b_bs, int c_mode) {
    if (batch < 0 || m < 0 || n < 0 || k < 0) return PC_ERR_ARG;
    if (act < PC_ACT_NONE || act > PC_ACT_SILU) return PC_ERR_ARG;
    if (c_mode < PC_C_NONE || c_mode > PC_C_FULL) return PC_ERR_ARG;
    if (batch == 0 || m == 0 || n == 0) return PC_OK;
    float al = (float)alpha, be = (float)beta;
    if (c_mode == PC_C_NONE || !c || be == 0.0f) c_mode = PC_C_NONE;
    /* one call for a shared b over contiguous rows of a */
    if (batch > 1 && b_bs == 0 && a_bs == m * k) { m *= batch; batch = 1; }
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX) return PC_ERR_ARG;
    int lda = (int)k, ldb = trans_b ? (int)k : (int)n;
    for (int64_t bi = 0; bi < batch; bi++) {
        float* o = out + bi * m * n;
        float gbeta = 0.0f;
        if (c_mode == PC_C_FULL) {
            const float* cb = c + bi * m * n;
            if (cb != o) memcpy(o, cb, (size_t)(m * n) * sizeof(float));
            gbeta = be;
        }
        if (k == 0) {
            if (gbeta == 0.0f) memset(o, 0, (size_t)(m * n) * sizeof(float));
            else for (int64_t i = 0; i < m * n; i++) o[i] *= gbeta;
            continue;
        }
        PC_SGEMM(PC_CblasRowMajor, PC_CblasNoTrans, trans_b ? PC_CblasTrans : PC_CblasNoTrans,
                 (int)m, (int)n, (int)k, al, a + bi * a_bs, lda, b + bi * b_bs, ldb, gbeta, o,
                 (int)n);
    }
    if (c_mode == PC_C_ROW) epilogue(out, c, be, act, batch * m, n);
    else if (act != PC_ACT_NONE) epilogue(out, NULL, 0.0f, act, batch * m, n);
    return PC_OK;
}
