/* Flash-style attention: per (batch, query head, tile of query rows), walk the keys in
 * blocks, keep a running max and sum per row (online softmax) and accumulate P @ V, so the
 * [s, t] score matrix never exists. Causal masking is bottom-right aligned (j <= i + t - s),
 * GQA maps query head h to kv head h / (hq / hkv), masks broadcast by strides. Work items
 * are independent and each row is computed by one thread: results do not depend on the
 * thread count. */
#include "pc_internal.h"
#include "pc_vec.h"

#define PC_BR 32 /* query rows per work item */
#define PC_BC 64 /* keys per block (generic path) */

typedef struct {
    const float *q, *k, *v;
    const void* mask;
    float* out;
    int64_t b, hq, hkv, s, t, d;
    float scale;
    int causal, mask_kind;
    int64_t ms[4], qs[4], ks[4], vs[4], os[4];
} att_args;

/* Generic path (any head dimension): one query row at a time. */
/* Scores of query row i against keys j0 .. j0+nv-1: scaled, then the additive mask
 * added or the boolean mask applied (masked-out keys get -inf). */
static inline void scale_and_mask(const att_args* A, int64_t bi, int64_t h, int64_t i,
                                  int64_t j0, int64_t nv, float scale, float* PC_R sc) {
    for (int64_t j = 0; j < nv; j++) sc[j] *= scale;
    const int64_t m3 = A->ms[3];
    const int64_t at = bi * A->ms[0] + h * A->ms[1] + i * A->ms[2] + j0 * m3;
    if (A->mask_kind == PC_MASK_ADD) {
        const float* mr = (const float*)A->mask + at;
        for (int64_t j = 0; j < nv; j++) sc[j] += mr[j * m3];
    } else if (A->mask_kind == PC_MASK_BOOL) {
        const uint8_t* mr = (const uint8_t*)A->mask + at;
        for (int64_t j = 0; j < nv; j++) sc[j] = mr[j * m3] ? sc[j] : -INFINITY;
    }
}

static void att_tile_generic(const att_args* A, int64_t bi, int64_t h, int64_t i0,
                             float* scratch) {
    const int64_t D = A->d, T = A->t, S = A->s;
    const int64_t nr = S - i0 < PC_BR ? S - i0 : PC_BR;
    const int64_t kvh = h / (A->hq / A->hkv);
    const float* qb = A->q + bi * A->qs[0] + h * A->qs[1];
    const float* kb_ = A->k + bi * A->ks[0] + kvh * A->ks[1];
    const float* vb = A->v + bi * A->vs[0] + kvh * A->vs[1];
    float* ob = A->out + bi * A->os[0] + h * A->os[1];

    float* PC_R kt = scratch;                   /* [D][PC_BC] transposed key block */
    float* PC_R sc = kt + D * PC_BC;            /* [PC_BC] scores of one row */
    float* PC_R acc = sc + PC_BC;               /* [PC_BR][D] output accumulators */
    float* PC_R mrow = acc + PC_BR * D;         /* [PC_BR] running max */
    float* PC_R lrow = mrow + PC_BR;            /* [PC_BR] running sum */

    for (int64_t r = 0; r < nr; r++) { mrow[r] = -INFINITY; lrow[r] = 0.0f; }
    memset(acc, 0, (size_t)(nr * D) * sizeof(float));

    /* keys any row of this tile may see */
    int64_t jend = T;
    if (A->causal) {
        int64_t last = i0 + nr - 1 + T - S; /* largest key index of the last row */
        jend = last + 1 < T ? last + 1 : T;
    }
    for (int64_t j0 = 0; j0 < jend; j0 += PC_BC) {
        const int64_t nk = jend - j0 < PC_BC ? jend - j0 : PC_BC;
        for (int64_t j = 0; j < nk; j++) {
            const float* PC_R kr = kb_ + (j0 + j) * A->ks[2];
            for (int64_t dd = 0; dd < D; dd++) kt[dd * PC_BC + j] = kr[dd];
        }
        for (int64_t r = 0; r < nr; r++) {
            const int64_t i = i0 + r;
            int64_t jmax = T - 1; /* inclusive, absolute */
            if (A->causal) jmax = i + T - S;
            if (jmax < j0) continue; /* nothing visible in this block */
            int64_t nv = jmax - j0 + 1 < nk ? jmax - j0 + 1 : nk; /* visible keys */
            const float* PC_R qr = qb + i * A->qs[2];
            for (int64_t j = 0; j < nv; j++) sc[j] = 0.0f;
            for (int64_t dd = 0; dd < D; dd++) {
                const float qv = qr[dd];
                const float* PC_R ktr = kt + dd * PC_BC;
                for (int64_t j = 0; j < nv; j++) sc[j] += qv * ktr[j];
            }
            scale_and_mask(A, bi, h, i, j0, nv, A->scale, sc);
            float bmax = -INFINITY;
            #pragma omp simd reduction(max : bmax)
            for (int64_t j = 0; j < nv; j++) bmax = sc[j] > bmax ? sc[j] : bmax;
            if (bmax == -INFINITY || bmax != bmax) continue;
            const float mold = mrow[r];
            const float mnew = mold > bmax ? mold : bmax;
            const float corr = pc_exp(mold - mnew);
            float sum = 0.0f;
            #pragma omp simd reduction(+ : sum)
            for (int64_t j = 0; j < nv; j++) {
                float p = pc_exp(sc[j] - mnew);
                sc[j] = p;
                sum += p;
            }
            lrow[r] = lrow[r] * corr + sum;
            mrow[r] = mnew;
            float* PC_R o = acc + r * D;
            if (corr != 1.0f)
                for (int64_t dd = 0; dd < D; dd++) o[dd] *= corr;
            int64_t j = 0;
            for (; j + 4 <= nv; j += 4) {
                const float p0 = sc[j], p1 = sc[j + 1], p2 = sc[j + 2], p3 = sc[j + 3];
                const float* PC_R v0 = vb + (j0 + j) * A->vs[2];
                const float* PC_R v1 = v0 + A->vs[2];
                const float* PC_R v2 = v1 + A->vs[2];
                const float* PC_R v3 = v2 + A->vs[2];
                for (int64_t dd = 0; dd < D; dd++)
                    o[dd] += p0 * v0[dd] + p1 * v1[dd] + p2 * v2[dd] + p3 * v3[dd];
            }
            for (; j < nv; j++) {
                const float p = sc[j];
                const float* PC_R vr = vb + (j0 + j) * A->vs[2];
                for (int64_t dd = 0; dd < D; dd++) o[dd] += p * vr[dd];
            }
        }
    }
    for (int64_t r = 0; r < nr; r++) {
        float* PC_R dst = ob + (i0 + r) * A->os[2];
        const float* PC_R o = acc + r * D;
        if (lrow[r] > 0.0f) {
            const float inv = 1.0f / lrow[r];
            for (int64_t dd = 0; dd < D; dd++) dst[dd] = o[dd] * inv;
        } else {
            for (int64_t dd = 0; dd < D; dd++) dst[dd] = 0.0f;
        }
    }
}


/* ---------------------------------------------------------------- register-blocked path */
/* When the head dimension is a multiple of PC_VL: key blocks of PC_NR keys; S = Q K^T and
 * O += P V run as GEMM micro-kernels (PC_MR query rows x PC_NR columns in registers). */

/* s[r][0..PC_NR) = q[r] . kt[:, j] for R rows; kt is the key block transposed [d][PC_NR]. */
#define PC_QK_KERNEL(R)                                                                  \
    static void qk_##R(const float* PC_R q, int64_t qs, const float* PC_R kt, int64_t d,  \
                       float* PC_R s) {                                                  \
        pc_vf acc[R][2];                                                                 \
        _Pragma("GCC unroll 16") for (int r = 0; r < R; r++) {                           \
            acc[r][0] = (pc_vf){0};                                                      \
            acc[r][1] = (pc_vf){0};                                                      \
        }                                                                                \
        for (int64_t kk = 0; kk < d; kk++) {                                             \
            const pc_vf b0 = *(const pc_vf*)(kt + kk * PC_NR);                           \
            const pc_vf b1 = *(const pc_vf*)(kt + kk * PC_NR + PC_VL);                   \
            _Pragma("GCC unroll 16") for (int r = 0; r < R; r++) {                       \
                const float av = q[r * qs + kk];                                         \
                acc[r][0] += av * b0;                                                    \
                acc[r][1] += av * b1;                                                    \
            }                                                                            \
        }                                                                                \
        _Pragma("GCC unroll 16") for (int r = 0; r < R; r++) {                           \
            *(pc_vf*)(s + r * PC_NR) = acc[r][0];                                        \
            *(pc_vf*)(s + r * PC_NR + PC_VL) = acc[r][1];                                \
        }                                                                                \
    }

/* o[r][c0 .. c0 + NV*PC_VL) += sum_j p[r][j] * v[j][same columns], j < nk, for R rows. */
#define PC_PV_KERNEL(R, NV)                                                              \
    static void pv_##R##_##NV(const float* PC_R p, int64_t nk, const float* PC_R v,     \
                              int64_t vs, float* PC_R o, int64_t os) {                   \
        pc_vf acc[R][NV];                                                                \
        _Pragma("GCC unroll 16") for (int r = 0; r < R; r++)                             \
            _Pragma("GCC unroll 2") for (int c = 0; c < NV; c++)                         \
                acc[r][c] = *(const pc_vf*)(o + r * os + c * PC_VL);                     \
        for (int64_t j = 0; j < nk; j++) {                                               \
            pc_vf b[NV];                                                                 \
            _Pragma("GCC unroll 2") for (int c = 0; c < NV; c++)                         \
                b[c] = *(const pc_vfu*)(v + j * vs + c * PC_VL);                         \
            _Pragma("GCC unroll 16") for (int r = 0; r < R; r++) {                       \
                const float pv = p[r * PC_NR + j];                                       \
                _Pragma("GCC unroll 2") for (int c = 0; c < NV; c++) acc[r][c] += pv * b[c]; \
            }                                                                            \
        }                                                                                \
        _Pragma("GCC unroll 16") for (int r = 0; r < R; r++)                             \
            _Pragma("GCC unroll 2") for (int c = 0; c < NV; c++)                         \
                *(pc_vf*)(o + r * os + c * PC_VL) = acc[r][c];                           \
    }

#define PC_ATT_KERNELS(R) PC_QK_KERNEL(R) PC_PV_KERNEL(R, 1) PC_PV_KERNEL(R, 2)
PC_ATT_KERNELS(1)
PC_ATT_KERNELS(2)
PC_ATT_KERNELS(3)
PC_ATT_KERNELS(4)
#if PC_MR > 4
PC_ATT_KERNELS(5)
PC_ATT_KERNELS(6)
#endif
#if PC_MR > 6
PC_ATT_KERNELS(7)
PC_ATT_KERNELS(8)
#endif

typedef void (*qk_fn)(const float*, int64_t, const float*, int64_t, float*);
typedef void (*pv_fn)(const float*, int64_t, const float*, int64_t, float*, int64_t);
#if PC_MR > 6
#define PC_BY_R(F) {NULL, F(1), F(2), F(3), F(4), F(5), F(6), F(7), F(8)}
#elif PC_MR > 4
#define PC_BY_R(F) {NULL, F(1), F(2), F(3), F(4), F(5), F(6)}
#else
#define PC_BY_R(F) {NULL, F(1), F(2), F(3), F(4)}
#endif
#define PC_QK_NAME(R) qk_##R
#define PC_PV1_NAME(R) pv_##R##_1
#define PC_PV2_NAME(R) pv_##R##_2
static const qk_fn qk_kernels[PC_MR + 1] = PC_BY_R(PC_QK_NAME);
static const pv_fn pv1_kernels[PC_MR + 1] = PC_BY_R(PC_PV1_NAME);
static const pv_fn pv2_kernels[PC_MR + 1] = PC_BY_R(PC_PV2_NAME);

static size_t att_fast_scratch(int64_t d) {
    /* kt [d][NR], s/p [BR][NR], o [BR][d], m [BR], l [BR] (+ alignment slack) */
    return (size_t)(d * PC_NR + PC_BR * PC_NR + PC_BR * d + 2 * PC_BR + 64);
}

static void att_tile_fast(const att_args* A, int64_t bi, int64_t h, int64_t i0,
                          float* scratch) {
    const int64_t D = A->d, T = A->t, S = A->s;
    const int64_t nr = S - i0 < PC_BR ? S - i0 : PC_BR;
    const int64_t kvh = h / (A->hq / A->hkv);
    const float* qb = A->q + bi * A->qs[0] + h * A->qs[1] + i0 * A->qs[2];
    const float* kb_ = A->k + bi * A->ks[0] + kvh * A->ks[1];
    const float* vb = A->v + bi * A->vs[0] + kvh * A->vs[1];
    float* ob = A->out + bi * A->os[0] + h * A->os[1];

    float* base = (float*)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    float* PC_R kt = base;                 /* [D][PC_NR] */
    float* PC_R sp = kt + D * PC_NR;       /* [PC_BR][PC_NR] scores, then probabilities */
    float* PC_R acc = sp + PC_BR * PC_NR;  /* [PC_BR][D] */
    float* PC_R mrow = acc + PC_BR * D;
    float* PC_R lrow = mrow + PC_BR;
    for (int64_t r = 0; r < nr; r++) { mrow[r] = -INFINITY; lrow[r] = 0.0f; }
    memset(acc, 0, (size_t)(nr * D) * sizeof(float));

    int64_t jend = T;
    if (A->causal) {
        int64_t last = i0 + nr - 1 + T - S;
        jend = last + 1 < T ? last + 1 : T;
    }
    const float scale = A->scale;
    for (int64_t j0 = 0; j0 < jend; j0 += PC_NR) {
        const int64_t nk = jend - j0 < PC_NR ? jend - j0 : PC_NR;
        for (int64_t j = 0; j < nk; j++) {
            const float* PC_R kr = kb_ + (j0 + j) * A->ks[2];
            for (int64_t dd = 0; dd < D; dd++) kt[dd * PC_NR + j] = kr[dd];
        }
        if (nk < PC_NR)
            for (int64_t dd = 0; dd < D; dd++)
                for (int64_t j = nk; j < PC_NR; j++) kt[dd * PC_NR + j] = 0.0f;
        for (int64_t r0 = 0; r0 < nr; r0 += PC_MR) {
            const int64_t rows = nr - r0 < PC_MR ? nr - r0 : PC_MR;
            qk_kernels[rows](qb + r0 * A->qs[2], A->qs[2], kt, D, sp + r0 * PC_NR);
        }
        for (int64_t r = 0; r < nr; r++) {
            const int64_t i = i0 + r;
            float* PC_R sr = sp + r * PC_NR;
            int64_t nv = nk; /* keys of this block row i may see */
            if (A->causal) {
                int64_t jmax = i + T - S;
                nv = jmax < j0 ? 0 : (jmax - j0 + 1 < nk ? jmax - j0 + 1 : nk);
            }
            scale_and_mask(A, bi, h, i, j0, nv, scale, sr);
            float bmax = -INFINITY;
            #pragma omp simd reduction(max : bmax)
            for (int64_t j = 0; j < nv; j++) bmax = sr[j] > bmax ? sr[j] : bmax;
            if (bmax == -INFINITY || bmax != bmax) {
                for (int64_t j = 0; j < PC_NR; j++) sr[j] = 0.0f;
                continue;
            }
            const float mold = mrow[r];
            const float mnew = mold > bmax ? mold : bmax;
            const float corr = pc_exp(mold - mnew);
            float sum = 0.0f;
            #pragma omp simd reduction(+ : sum)
            for (int64_t j = 0; j < nv; j++) {
                float p = pc_exp(sr[j] - mnew);
                sr[j] = p;
                sum += p;
            }
            for (int64_t j = nv; j < PC_NR; j++) sr[j] = 0.0f;
            lrow[r] = lrow[r] * corr + sum;
            mrow[r] = mnew;
            if (corr != 1.0f) {
                float* PC_R o = acc + r * D;
                for (int64_t dd = 0; dd < D; dd++) o[dd] *= corr;
            }
        }
        const float* vblk = vb + j0 * A->vs[2];
        for (int64_t r0 = 0; r0 < nr; r0 += PC_MR) {
            const int64_t rows = nr - r0 < PC_MR ? nr - r0 : PC_MR;
            int64_t c0 = 0;
            for (; c0 + PC_NR <= D; c0 += PC_NR)
                pv2_kernels[rows](sp + r0 * PC_NR, nk, vblk + c0, A->vs[2],
                                  acc + r0 * D + c0, D);
            for (; c0 < D; c0 += PC_VL)
                pv1_kernels[rows](sp + r0 * PC_NR, nk, vblk + c0, A->vs[2],
                                  acc + r0 * D + c0, D);
        }
    }
    for (int64_t r = 0; r < nr; r++) {
        float* PC_R dst = ob + (i0 + r) * A->os[2];
        const float* PC_R o = acc + r * D;
        if (lrow[r] > 0.0f) {
            const float inv = 1.0f / lrow[r];
            for (int64_t dd = 0; dd < D; dd++) dst[dd] = o[dd] * inv;
        } else {
            for (int64_t dd = 0; dd < D; dd++) dst[dd] = 0.0f;
        }
    }
}

static void contiguous4(int64_t* st, int64_t n1, int64_t n2, int64_t n3) {
    st[3] = 1; st[2] = n3; st[1] = n2 * n3; st[0] = n1 * n2 * n3;
}

int pc_attention(const float* q, const float* k, const float* v, const void* mask, float* out,
                 int64_t b, int64_t hq, int64_t hkv, int64_t s, int64_t t, int64_t d,
                 double scale, int causal, int mask_kind, const int64_t* mask_strides,
                 const int64_t* q_strides, const int64_t* k_strides, const int64_t* v_strides,
                 const int64_t* out_strides) {
    if (b < 0 || hq <= 0 || hkv <= 0 || hq % hkv || s < 0 || t < 0 || d <= 0) return PC_ERR_ARG;
    if (mask_kind != PC_MASK_NONE && (!mask || !mask_strides)) return PC_ERR_ARG;
    if (mask_kind < PC_MASK_NONE || mask_kind > PC_MASK_ADD) return PC_ERR_ARG;
    att_args A = {q, k, v, mask, out, b, hq, hkv, s, t, d, (float)scale, causal, mask_kind,
                  {0}, {0}, {0}, {0}, {0}};
    if (mask_kind != PC_MASK_NONE) memcpy(A.ms, mask_strides, sizeof A.ms);
    if (q_strides) memcpy(A.qs, q_strides, sizeof A.qs); else contiguous4(A.qs, hq, s, d);
    if (k_strides) memcpy(A.ks, k_strides, sizeof A.ks); else contiguous4(A.ks, hkv, t, d);
    if (v_strides) memcpy(A.vs, v_strides, sizeof A.vs); else contiguous4(A.vs, hkv, t, d);
    if (out_strides) memcpy(A.os, out_strides, sizeof A.os); else contiguous4(A.os, hq, s, d);
    if ((s > 1 && A.qs[3] != 1) || A.ks[3] != 1 || A.vs[3] != 1 || A.os[3] != 1) {
        if (d > 1) return PC_ERR_ARG; /* the head dimension must be contiguous */
    }
    if (b == 0 || s == 0) return PC_OK;
    const int64_t tiles = (s + PC_BR - 1) / PC_BR;
    const int64_t items = b * hq * tiles;
    const int fast = d % PC_VL == 0;
    const size_t need = fast ? att_fast_scratch(d)
                             : (size_t)(d * PC_BC + PC_BC + PC_BR * d + 2 * PC_BR);
    int64_t work = b * hq * s * (t > 0 ? t : 1) * d;
    int nt = pc_nt(work, 1 << 16);
    if (nt > items) nt = (int)items;
    int failed = 0;
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        float* scratch = pc_scratch(need);
        if (!scratch) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; it++) {
            if (!scratch) continue;
            const int64_t tile = it % tiles, bh = it / tiles;
            if (fast) att_tile_fast(&A, bh / hq, bh % hq, tile * PC_BR, scratch);
            else att_tile_generic(&A, bh / hq, bh % hq, tile * PC_BR, scratch);
        }
    }
    return failed ? PC_ERR_NOMEM : PC_OK;
}
