/* Shared helpers of the kernel files: threading, vectorizable math, strided iteration,
 * per-thread scratch and the BLAS shim. Not part of the public API. */
#ifndef PC_INTERNAL_H
#define PC_INTERNAL_H

#include "perfcast_kernels.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define PC_R __restrict__
#define PC_INLINE static inline __attribute__((always_inline))

/* ---------------------------------------------------------------- threading */

/* Number of threads the kernels may use (set by pc_set_num_threads). */
int pc_threads(void);

/* Threads worth using for `work` units when one thread should get at least `grain`. */
PC_INLINE int pc_nt(int64_t work, int64_t grain) {
    int nt = pc_threads();
    if (nt <= 1 || work < 2 * grain) return 1;
    int64_t most = work / grain;
    return most < nt ? (int)most : nt;
}

/* Elements per thread below which elementwise loops stay single-threaded. */
#define PC_GRAIN 32768

/* ---------------------------------------------------------------- BLAS shim */
/* scipy-openblas32 prefixes its symbols with scipy_; PC_BLAS_PREFIX (set by the build)
 * names the prefix so another CBLAS can be linked. CBLAS enums are plain ints. */
#ifndef PC_BLAS_PREFIX
#define PC_BLAS_PREFIX scipy_
#endif
#define PC_CAT2(a, b) a##b
#define PC_CAT(a, b) PC_CAT2(a, b)
#define PC_SGEMM PC_CAT(PC_BLAS_PREFIX, cblas_sgemm)
#define PC_BLAS_SET_THREADS PC_CAT(PC_BLAS_PREFIX, openblas_set_num_threads)

enum { PC_CblasRowMajor = 101, PC_CblasNoTrans = 111, PC_CblasTrans = 112 };
void PC_SGEMM(int order, int transa, int transb, int m, int n, int k, float alpha,
              const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc);
void PC_BLAS_SET_THREADS(int n);

/* ---------------------------------------------------------------- math */
/* Branch-free float approximations (about 1-2 ulp) that gcc vectorizes when inlined into
 * a loop; libm calls would keep those loops scalar. */

PC_INLINE float pc_i2f(int32_t i) { float f; memcpy(&f, &i, 4); return f; }
PC_INLINE int32_t pc_f2i(float f) { int32_t i; memcpy(&i, &f, 4); return i; }

/* exp: Cephes range reduction and polynomial; 0 below FLT_MIN, inf above FLT_MAX. */
PC_INLINE float pc_exp(float x) {
    float xc = x < -87.5f ? -87.5f : x;
    xc = xc > 88.5f ? 88.5f : xc;
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float t = xc * 1.44269504088896341f + magic;
    float n = t - magic;
    int32_t ni = pc_f2i(t) - 0x4B400000;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    float res = p * pc_i2f((ni + 126) << 23) * 2.0f;
    res = x < -87.33654475f ? 0.0f : res;
    res = x > 88.72283905f ? INFINITY : res;
    return x != x ? x : res;
}

PC_INLINE float pc_sigmoid(float x) { return 1.0f / (1.0f + pc_exp(-x)); }

PC_INLINE float pc_tanh(float x) {
    float ax = fabsf(x);
    float e = pc_exp(2.0f * (ax > 10.0f ? 10.0f : ax));
    float big = 1.0f - 2.0f / (e + 1.0f);
    float z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    float small = p * z * ax + ax;
    float r = ax < 0.625f ? small : big;
    r = copysignf(r, x);
    return x != x ? x : r;
}

/* erf: two minimax pieces (N. Juffa's erff), max error about 1 ulp.
 * pc_erfc_tail(t) = erfc(t) for t > 0.927734375 (full relative accuracy). */
#define PC_ERF_SPLIT 0.927734375f
PC_INLINE float pc_erfc_tail(float t) {
    float s = t * t;
    float r = -1.72853470e-5f * t + 3.83197126e-4f;
    float u = -3.88396438e-3f * t + 2.42546219e-2f;
    r = r * s + u;
    r = r * t - 1.06777877e-1f;
    r = r * t - 6.34846687e-1f;
    r = r * t - 1.28717512e-1f;
    r = r * t - t;
    return pc_exp(r);
}
PC_INLINE float pc_erf_core(float a) { /* |a| <= PC_ERF_SPLIT */
    float s = a * a;
    float q = -5.96761703e-4f;
    q = q * s + 4.99119423e-3f;
    q = q * s - 2.67681349e-2f;
    q = q * s + 1.12819925e-1f;
    q = q * s - 3.76125336e-1f;
    q = q * s + 1.28379166e-1f;
    return q * a + a;
}
PC_INLINE float pc_erf(float a) {
    float t = fabsf(a);
    float big = copysignf(1.0f - pc_erfc_tail(t), a);
    float res = t > PC_ERF_SPLIT ? big : pc_erf_core(a);
    return a != a ? a : res;
}

/* gelu = x/2 * (1 + erf(x/sqrt2)); 1 + erf is erfc(-a) in the negative tail, which keeps
 * the relative accuracy where 1 + erf would cancel. */
PC_INLINE float pc_gelu(float x) {
    float a = x * 0.70710678118654752f;
    float t = fabsf(a);
    float tail = pc_erfc_tail(t);
    float one_plus = a < -PC_ERF_SPLIT ? tail : (a > PC_ERF_SPLIT ? 2.0f - tail
                                                                  : 1.0f + pc_erf_core(a));
    return 0.5f * x * one_plus;
}
PC_INLINE float pc_gelu_tanh(float x) {
    float inner = 0.79788456080286536f * (x + 0.044715f * x * x * x);
    return 0.5f * x * (1.0f + pc_tanh(inner));
}
PC_INLINE float pc_silu(float x) { return x / (1.0f + pc_exp(-x)); }
PC_INLINE float pc_relu(float x) { return x > 0.0f ? x : (x != x ? x : 0.0f); }

/* max that propagates NaN from either side (torch.maximum semantics). */
#define PC_MAX_NAN(a, b) ((a) != (a) || (a) > (b) ? (a) : (b))

/* In-place activation over a contiguous run. */
void pc_act_inplace(int act, float* PC_R x, int64_t n);

/* ---------------------------------------------------------------- strided iteration */
/* Up to 4 operands over one shape: size-1 dimensions dropped, adjacent dimensions merged
 * when every operand allows it. Afterwards rank >= 1 and the last dimension is the inner
 * loop. */
typedef struct {
    int rank;
    int nops;
    int64_t shape[PC_MAX_RANK];
    int64_t st[4][PC_MAX_RANK];
} pc_nd;

int pc_nd_init(pc_nd* it, int rank, const int64_t* shape, int nops, const int64_t* const* strides);
int64_t pc_nd_outer(const pc_nd* it);   /* product of all but the last dimension */
/* Element offsets of every operand at outer index `o` (row-major over dims [0, rank-1)). */
PC_INLINE void pc_nd_offsets(const pc_nd* it, int64_t o, int64_t* offs) {
    for (int p = 0; p < it->nops; p++) offs[p] = 0;
    for (int d = it->rank - 2; d >= 0; d--) {
        int64_t i = o % it->shape[d];
        o /= it->shape[d];
        for (int p = 0; p < it->nops; p++) offs[p] += i * it->st[p][d];
    }
}

/* ---------------------------------------------------------------- scratch */
/* Per-thread 64-byte aligned scratch that grows and is kept (no allocation per call once
 * warm). Returns NULL when allocation fails. */
float* pc_scratch(size_t floats);

#endif
