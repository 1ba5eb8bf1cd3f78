/* GEMM against a constant B packed once (weights): out = act(alpha * a @ B + beta * c).
 *
 * The BLAS packs B on every call; for the short-and-wide products of inference
 * (m = tokens, n and k = model widths) that packing is a large share of the time. Here B
 * is packed ahead of time into column panels of PC_NR floats ([k][PC_NR] each, zero
 * padded), and a register-blocked micro-kernel (PC_MR rows x PC_NR columns of
 * accumulators, GCC vector extensions: AVX-512, AVX or SSE registers) streams each panel
 * once per block of rows of a. Bias, residual, alpha and the activation are applied while
 * the tile is hot. Threads split the panels; every output element is one thread's
 * k-ordered FMA chain, so results do not depend on the thread count. */
#include "pc_internal.h"
#include "pc_vec.h"

int64_t pc_gemm_pack_nr(void) { return PC_NR; }

int64_t pc_gemm_packed_size(int64_t n, int64_t k) {
    return ((n + PC_NR - 1) / PC_NR) * k * PC_NR;
}

int pc_gemm_pack_b(const float* b, float* packed, int64_t n, int64_t k, int trans_b) {
    if (n < 0 || k < 0) return PC_ERR_ARG;
    const int64_t panels = (n + PC_NR - 1) / PC_NR;
    int nt = pc_nt(n * k, 1 << 18);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t p = 0; p < panels; p++) {
        float* dst = packed + p * k * PC_NR;
        const int64_t n0 = p * PC_NR;
        const int64_t nv = n - n0 < PC_NR ? n - n0 : PC_NR;
        for (int64_t kk = 0; kk < k; kk++) {
            float* row = dst + kk * PC_NR;
            if (trans_b) {
                for (int64_t j = 0; j < nv; j++) row[j] = b[(n0 + j) * k + kk];
            } else {
                for (int64_t j = 0; j < nv; j++) row[j] = b[kk * n + n0 + j];
            }
            for (int64_t j = nv; j < PC_NR; j++) row[j] = 0.0f;
        }
    }
    return PC_OK;
}

typedef struct {
    const float* c;   /* NULL, row bias [n] or full [m, n] */
    int c_mode;
    float alpha, beta;
    int act;
    int64_t n;        /* columns of out (and of a full c) */
} pc_epi;

/* Store an R x PC_NR tile (nv valid columns) with the epilogue. */
#define PC_STORE_TILE(R)                                                                 \
    do {                                                                                 \
        for (int r = 0; r < R; r++) {                                                    \
            pc_vf v0 = acc[r][0], v1 = acc[r][1];                                        \
            if (e->alpha != 1.0f) { v0 *= e->alpha; v1 *= e->alpha; }                    \
            float tmp[PC_NR] __attribute__((aligned(64)));                               \
            float* dst = out + (row0 + r) * e->n + n0;                                   \
            const float* cr = NULL;                                                      \
            if (e->c_mode == PC_C_ROW) cr = e->c + n0;                                   \
            else if (e->c_mode == PC_C_FULL) cr = e->c + (row0 + r) * e->n + n0;         \
            if (nv == PC_NR) {                                                           \
                if (cr) {                                                                \
                    v0 += e->beta * *(const pc_vfu*)cr;                                  \
                    v1 += e->beta * *(const pc_vfu*)(cr + PC_VL);                        \
                }                                                                        \
                *(pc_vfu*)dst = v0;                                                      \
                *(pc_vfu*)(dst + PC_VL) = v1;                                            \
                if (e->act) pc_act_inplace(e->act, dst, PC_NR);                          \
            } else {                                                                     \
                *(pc_vf*)tmp = v0;                                                       \
                *(pc_vf*)(tmp + PC_VL) = v1;                                             \
                if (cr) for (int64_t j = 0; j < nv; j++) tmp[j] += e->beta * cr[j];      \
                if (e->act) pc_act_inplace(e->act, tmp, nv);                             \
                for (int64_t j = 0; j < nv; j++) dst[j] = tmp[j];                        \
            }                                                                            \
        }                                                                                \
    } while (0)

/* Micro-kernel for exactly R rows: acc[R][2] stays in registers across the k loop. */
#define PC_DEFINE_KERNEL(R)                                                              \
    static void pc_kernel_##R(const float* PC_R a, int64_t lda, const float* PC_R bp,    \
                              int64_t k, float* out, int64_t row0, int64_t n0,           \
                              int64_t nv, const pc_epi* e) {                             \
        pc_vf acc[R][2];                                                                 \
        _Pragma("GCC unroll 16") for (int r = 0; r < R; r++) {                           \
            acc[r][0] = (pc_vf){0};                                                      \
            acc[r][1] = (pc_vf){0};                                                      \
        }                                                                                \
        for (int64_t kk = 0; kk < k; kk++) {                                             \
            const pc_vf b0 = *(const pc_vf*)(bp + kk * PC_NR);                           \
            const pc_vf b1 = *(const pc_vf*)(bp + kk * PC_NR + PC_VL);                   \
            _Pragma("GCC unroll 16") for (int r = 0; r < R; r++) {                       \
                const float av = a[r * lda + kk];                                        \
                acc[r][0] += av * b0;                                                    \
                acc[r][1] += av * b1;                                                    \
            }                                                                            \
        }                                                                                \
        PC_STORE_TILE(R);                                                                \
    }

PC_DEFINE_KERNEL(1)
PC_DEFINE_KERNEL(2)
PC_DEFINE_KERNEL(3)
PC_DEFINE_KERNEL(4)
#if PC_MR > 4
PC_DEFINE_KERNEL(5)
PC_DEFINE_KERNEL(6)
#endif
#if PC_MR > 6
PC_DEFINE_KERNEL(7)
PC_DEFINE_KERNEL(8)
#endif

typedef void (*pc_kernel_fn)(const float*, int64_t, const float*, int64_t, float*, int64_t,
                             int64_t, int64_t, const pc_epi*);
static const pc_kernel_fn pc_kernels[PC_MR + 1] = {
    NULL, pc_kernel_1, pc_kernel_2, pc_kernel_3, pc_kernel_4,
#if PC_MR > 4
    pc_kernel_5, pc_kernel_6,
#endif
#if PC_MR > 6
    pc_kernel_7, pc_kernel_8,
#endif
};

/* Rows of a per pass over B: that block of a stays in L2 (with a panel of B) while every
 * panel streams past it once. */
static int64_t rows_per_block(int64_t k) {
    int64_t rows = (512 * 1024) / (k > 0 ? k * 4 : 4);
    rows = rows / PC_MR * PC_MR;
    return rows < PC_MR ? PC_MR : rows;
}

int pc_gemm_packed(const float* a, const float* packed_b, const float* c, float* out,
                   int64_t batch, int64_t m, int64_t n, int64_t k, double alpha, double beta,
                   int act, int64_t a_bs, int c_mode) {
    if (batch < 0 || m < 0 || n < 0 || k < 0) return PC_ERR_ARG;
    if (act < PC_ACT_NONE || act > PC_ACT_SILU) return PC_ERR_ARG;
    if (c_mode < PC_C_NONE || c_mode > PC_C_FULL) return PC_ERR_ARG;
    if (batch == 0 || m == 0 || n == 0) return PC_OK;
    if (batch > 1 && a_bs == m * k) { m *= batch; batch = 1; }
    if (c_mode == PC_C_NONE || !c || beta == 0.0) c_mode = PC_C_NONE;
    const int64_t panels = (n + PC_NR - 1) / PC_NR;
    const int64_t mb = rows_per_block(k);
    for (int64_t bi = 0; bi < batch; bi++) {
        const float* ab = a + bi * a_bs;
        float* ob = out + bi * m * n;
        pc_epi e = {c_mode == PC_C_FULL ? c + bi * m * n : c, c_mode, (float)alpha,
                    (float)beta, act, n};
        for (int64_t m0 = 0; m0 < m; m0 += mb) {
            const int64_t m1 = m0 + mb < m ? m0 + mb : m;
            int nt = pc_nt((m1 - m0) * n * k, 1 << 20);
            if (nt > panels) nt = (int)panels;
            /* dynamic: a thread slowed by another process does not hold the others up;
             * each element is still one thread's fixed FMA chain */
            #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(dynamic, 4)
            for (int64_t p = 0; p < panels; p++) {
                const int64_t n0 = p * PC_NR;
                const int64_t nv = n - n0 < PC_NR ? n - n0 : PC_NR;
                const float* bp = packed_b + p * k * PC_NR;
                for (int64_t r0 = m0; r0 < m1; r0 += PC_MR) {
                    const int64_t rows = m1 - r0 < PC_MR ? m1 - r0 : PC_MR;
                    pc_kernels[rows](ab + r0 * k, k, bp, k, ob, r0, n0, nv, &e);
                }
            }
        }
    }
    return PC_OK;
}
