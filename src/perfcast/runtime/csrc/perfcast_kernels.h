/* perfcast runtime kernels: one C function per runtime step kind (docs/runtime.md).
 *
 * Conventions
 *   - every kernel returns 0 on success and a negative PC_ERR_* code otherwise;
 *   - sizes and strides are int64 element counts; outputs are contiguous unless an
 *     output-strides argument says otherwise;
 *   - dtypes: PC_F32 (float), PC_I64 (int64_t), PC_BOOL (one byte, 0 or 1);
 *   - floating-point attributes arrive as double and are rounded to float once;
 *   - a row is always computed by one thread with the same code, so results do not
 *     depend on the thread count (the BLAS keeps its own deterministic split).
 *
 * The enum values are parsed by perfcast/runtime/ckernels.py: keep them one per line as
 * `NAME = value,`.
 */
#ifndef PERFCAST_KERNELS_H
#define PERFCAST_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PC_MAX_RANK 16

enum pc_error {
    PC_OK = 0,
    PC_ERR_ARG = -1,        /* unsupported op/dtype combination or bad argument */
    PC_ERR_INDEX = -2,      /* embedding index out of range */
    PC_ERR_RANK = -3,       /* more than PC_MAX_RANK dimensions */
    PC_ERR_NOMEM = -4,      /* scratch allocation failed */
};

enum pc_dtype {
    PC_F32 = 0,
    PC_I64 = 1,
    PC_BOOL = 2,
};

enum pc_act {
    PC_ACT_NONE = 0,
    PC_ACT_RELU = 1,
    PC_ACT_GELU = 2,
    PC_ACT_GELU_TANH = 3,
    PC_ACT_SILU = 4,
};

enum pc_cmode {
    PC_C_NONE = 0,
    PC_C_ROW = 1,
    PC_C_FULL = 2,
};

enum pc_binary_op {
    PC_BIN_ADD = 0,
    PC_BIN_SUB = 1,
    PC_BIN_MUL = 2,
    PC_BIN_DIV = 3,
    PC_BIN_POW = 4,
    PC_BIN_MAXIMUM = 5,
    PC_BIN_MINIMUM = 6,
    PC_BIN_EQ = 7,
    PC_BIN_NE = 8,
    PC_BIN_LT = 9,
    PC_BIN_LE = 10,
    PC_BIN_GT = 11,
    PC_BIN_GE = 12,
    PC_BIN_AND = 13,
    PC_BIN_OR = 14,
};

enum pc_scalar_op {
    PC_SC_ADD = 0,
    PC_SC_MUL = 1,
    PC_SC_SUB = 2,
    PC_SC_RSUB = 3,
    PC_SC_DIV = 4,
    PC_SC_RDIV = 5,
    PC_SC_POW = 6,
    PC_SC_MAXIMUM = 7,
    PC_SC_MINIMUM = 8,
};

enum pc_unary_op {
    PC_UN_RELU = 0,
    PC_UN_GELU = 1,
    PC_UN_GELU_TANH = 2,
    PC_UN_SILU = 3,
    PC_UN_SIGMOID = 4,
    PC_UN_TANH = 5,
    PC_UN_EXP = 6,
    PC_UN_LOG = 7,
    PC_UN_NEG = 8,
    PC_UN_SQRT = 9,
    PC_UN_RSQRT = 10,
    PC_UN_ABS = 11,
    PC_UN_COS = 12,
    PC_UN_SIN = 13,
    PC_UN_SQUARE = 14,
    PC_UN_RECIPROCAL = 15,
    PC_UN_ERF = 16,
    PC_UN_NOT = 17,
};

enum pc_reduce_op {
    PC_RED_SUM = 0,
    PC_RED_MEAN = 1,
    PC_RED_MAX = 2,
};

enum pc_mask_kind {
    PC_MASK_NONE = 0,
    PC_MASK_BOOL = 1,
    PC_MASK_ADD = 2,
};

/* ---- runtime ---- */
void pc_set_num_threads(int n);   /* kernels (OpenMP) and the BLAS */
int pc_get_num_threads(void);
const char* pc_build_info(void);  /* compile-time facts: OpenMP, vector ISA, BLAS */

/* ---- gemm: out = act(alpha * a @ op(b) + beta * c) ----
 * a: [batch, m, k] with batch stride a_bs (elements; 0 = shared), rows contiguous;
 * b: [k, n] ([n, k] if trans_b) with batch stride b_bs (0 = shared);
 * c: NULL, a row bias [n] (PC_C_ROW) or [batch, m, n] (PC_C_FULL); out: [batch, m, n]. */
int pc_gemm(const float* a, const float* b, const float* c, float* out,
            int64_t batch, int64_t m, int64_t n, int64_t k, int trans_b,
            double alpha, double beta, int act, int64_t a_bs, int64_t b_bs, int c_mode);

/* ---- gemm against a pre-packed constant b (weights) ----
 * pc_gemm_pack_b packs b ([k, n], or [n, k] if trans_b) into pc_gemm_packed_size(n, k)
 * floats (64-byte aligned buffer); pc_gemm_packed then computes like pc_gemm with that b
 * shared by every batch row. pc_gemm_pack_nr: the panel width (build dependent). */
int64_t pc_gemm_pack_nr(void);
int64_t pc_gemm_packed_size(int64_t n, int64_t k);
int pc_gemm_pack_b(const float* b, float* packed, int64_t n, int64_t k, int trans_b);
int pc_gemm_packed(const float* a, const float* packed_b, const float* c, float* out,
                   int64_t batch, int64_t m, int64_t n, int64_t k, double alpha, double beta,
                   int act, int64_t a_bs, int c_mode);

/* ---- elementwise ---- */
/* out[idx] = a[idx . a_strides] op b[idx . b_strides] over `shape`; out contiguous. */
int pc_binary(int op, int dt_in, int dt_out, int rank, const int64_t* shape,
              const void* a, const int64_t* a_strides, const void* b, const int64_t* b_strides,
              void* out);
int pc_scalar(int op, int dt, const void* x, double value, void* out, int64_t n);
int pc_unary(int op, int dt, const void* x, void* out, int64_t n);
/* out[i] = silu(gate[i]) * up[i] */
int pc_swiglu(const float* gate, const float* up, float* out, int64_t n);
/* out = cond ? a : b with per-operand strides; elem_size of a/b/out in bytes. */
int pc_where(int elem_size, int rank, const int64_t* shape,
             const uint8_t* cond, const int64_t* cond_strides,
             const void* a, const int64_t* a_strides, const void* b, const int64_t* b_strides,
             void* out);
/* Strided gather of `shape` from x (x_strides) into out (out_strides, NULL = contiguous). */
int pc_copy(int elem_size, int rank, const int64_t* shape, const void* x,
            const int64_t* x_strides, void* out, const int64_t* out_strides);
int pc_cast(int dt_in, int dt_out, const void* x, void* out, int64_t n);

/* ---- row-wise ---- */
int pc_softmax(const float* x, float* out, int64_t rows, int64_t cols);
/* w and b may be NULL (no affine / no bias). */
int pc_layer_norm(const float* x, const float* w, const float* b, float* out,
                  int64_t rows, int64_t cols, double eps);
int pc_rms_norm(const float* x, const float* w, float* out, int64_t rows, int64_t cols,
                double eps);
/* x viewed as [outer, len, inner]; reduce the middle dimension into out [outer, inner]. */
int pc_reduce(int op, const float* x, float* out, int64_t outer, int64_t len, int64_t inner);
/* x, out viewed as [outer, len, inner] (dtype PC_F32 or PC_I64): running sum along len. */
int pc_cumsum(int dtype, const void* x, void* out, int64_t outer, int64_t len, int64_t inner);

/* ---- embedding: out[i, :] = table[idx[i], :]; idx checked against vocab ---- */
int pc_embedding(const float* table, const int64_t* idx, float* out, int64_t n, int64_t dim,
                 int64_t vocab);

/* ---- gather (torch.gather): x [outer, len, inner], idx and out [outer, m, inner] ---- */
int pc_gather(int itemsize, const void* x, const int64_t* idx, void* out, int64_t outer,
              int64_t len, int64_t m, int64_t inner);

/* ---- rope: x, out [rows, d]; cos, sin [cs_rows, d], row r uses row r % cs_rows ---- */
int pc_rope(const float* x, const float* cos_t, const float* sin_t, float* out,
            int64_t rows, int64_t d, int64_t cs_rows);

/* ---- attention (flash-style, online softmax) ----
 * q [b, hq, s, d], k/v [b, hkv, t, d], out [b, hq, s, d]; each with 4 element strides
 * (NULL = contiguous; the last stride must be 1). mask: NULL, bool (uint8, nonzero = keep)
 * or float additive, addressed with mask_strides over [b, hq, s, t] (0 = broadcast).
 * causal keeps j <= i + t - s. Rows with no key kept produce zeros. */
int pc_attention(const float* q, const float* k, const float* v, const void* mask, float* out,
                 int64_t b, int64_t hq, int64_t hkv, int64_t s, int64_t t, int64_t d,
                 double scale, int causal, int mask_kind, const int64_t* mask_strides,
                 const int64_t* q_strides, const int64_t* k_strides, const int64_t* v_strides,
                 const int64_t* out_strides);

#ifdef __cplusplus
}
#endif
#endif
