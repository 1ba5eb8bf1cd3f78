/* Elementwise kernels: binary (broadcast by strides), scalar, unary, swiglu, where, copy,
 * cast and the activation epilogue. Inner loops are contiguous or stride-0 wherever the
 * layout allows, so gcc vectorizes them. */
#include "pc_internal.h"

/* ---------------------------------------------------------------- activation */

void pc_act_inplace(int act, float* PC_R x, int64_t n) {
    switch (act) {
    case PC_ACT_RELU: for (int64_t i = 0; i < n; i++) x[i] = pc_relu(x[i]); break;
    case PC_ACT_GELU: for (int64_t i = 0; i < n; i++) x[i] = pc_gelu(x[i]); break;
    case PC_ACT_GELU_TANH: for (int64_t i = 0; i < n; i++) x[i] = pc_gelu_tanh(x[i]); break;
    case PC_ACT_SILU: for (int64_t i = 0; i < n; i++) x[i] = pc_silu(x[i]); break;
    default: break;
    }
}

/* ---------------------------------------------------------------- binary */

/* One inner run of n elements: contiguous/broadcast specializations then the general
 * strided loop. X and Y name the loaded operands in EXPR. The planner may write the output
 * over an input read at the same index (in place): that case gets loops through the one
 * restrict output pointer, so it stays both vectorized and well defined. */
#define PC_BIN_LOOPS(TI, TO, EXPR, PA, PB, PO)                                            \
    if (sa == 1 && sb == 1) {                                                             \
        for (int64_t i = 0; i < n; i++) { TI X = PA[i], Y = PB[i]; PO[i] = (TO)(EXPR); }  \
    } else if (sa == 1 && sb == 0) {                                                      \
        const TI Y = PB[0];                                                               \
        for (int64_t i = 0; i < n; i++) { TI X = PA[i]; PO[i] = (TO)(EXPR); }             \
    } else if (sa == 0 && sb == 1) {                                                      \
        const TI X = PA[0];                                                               \
        for (int64_t i = 0; i < n; i++) { TI Y = PB[i]; PO[i] = (TO)(EXPR); }             \
    } else {                                                                              \
        for (int64_t i = 0; i < n; i++) {                                                 \
            TI X = PA[i * sa], Y = PB[i * sb]; PO[i] = (TO)(EXPR);                        \
        }                                                                                 \
    }

#define PC_BIN_RUN(TI, TO, EXPR)                                                          \
    do {                                                                                  \
        if (sizeof(TI) == sizeof(TO) && (const void*)a_ == (const void*)o_) {             \
            TO* PC_R po = (TO*)o_;                                                        \
            const TI* pa = (const TI*)po;                                                 \
            const TI* PC_R pb = (const TI*)b_;                                            \
            PC_BIN_LOOPS(TI, TO, EXPR, pa, pb, po)                                        \
        } else if (sizeof(TI) == sizeof(TO) && (const void*)b_ == (const void*)o_) {      \
            TO* PC_R po = (TO*)o_;                                                        \
            const TI* PC_R pa = (const TI*)a_;                                            \
            const TI* pb = (const TI*)po;                                                 \
            PC_BIN_LOOPS(TI, TO, EXPR, pa, pb, po)                                        \
        } else {                                                                          \
            const TI* PC_R pa = (const TI*)a_;                                            \
            const TI* PC_R pb = (const TI*)b_;                                            \
            TO* PC_R po = (TO*)o_;                                                        \
            PC_BIN_LOOPS(TI, TO, EXPR, pa, pb, po)                                        \
        }                                                                                 \
    } while (0)

#define PC_MAXF(X, Y) ((X) != (X) || (X) > (Y) ? (X) : (Y))
#define PC_MINF(X, Y) ((X) != (X) || (X) < (Y) ? (X) : (Y))
#define PC_MAXI(X, Y) ((X) > (Y) ? (X) : (Y))
#define PC_MINI(X, Y) ((X) < (Y) ? (X) : (Y))

static int64_t pc_ipow(int64_t base, int64_t e) {
    if (e < 0) return base == 1 ? 1 : (base == -1 ? ((e & 1) ? -1 : 1) : 0);
    int64_t r = 1;
    while (e) { if (e & 1) r *= base; base *= base; e >>= 1; }
    return r;
}

/* Comparisons and logic shared by all input dtypes (output bool). */
#define PC_BIN_CMP_CASES(TI)                                                        \
    case PC_BIN_EQ: PC_BIN_RUN(TI, uint8_t, X == Y); return PC_OK;                 \
    case PC_BIN_NE: PC_BIN_RUN(TI, uint8_t, X != Y); return PC_OK;                 \
    case PC_BIN_LT: PC_BIN_RUN(TI, uint8_t, X < Y); return PC_OK;                  \
    case PC_BIN_LE: PC_BIN_RUN(TI, uint8_t, X <= Y); return PC_OK;                 \
    case PC_BIN_GT: PC_BIN_RUN(TI, uint8_t, X > Y); return PC_OK;                  \
    case PC_BIN_GE: PC_BIN_RUN(TI, uint8_t, X >= Y); return PC_OK;                 \
    case PC_BIN_AND: PC_BIN_RUN(TI, uint8_t, (X != 0) & (Y != 0)); return PC_OK;   \
    case PC_BIN_OR: PC_BIN_RUN(TI, uint8_t, (X != 0) | (Y != 0)); return PC_OK;

static int bin_run(int op, int dt_in, int dt_out, int64_t n, const void* a_, int64_t sa,
                   const void* b_, int64_t sb, void* o_) {
    if (dt_in == PC_F32 && dt_out == PC_F32) {
        switch (op) {
        case PC_BIN_ADD: PC_BIN_RUN(float, float, X + Y); return PC_OK;
        case PC_BIN_SUB: PC_BIN_RUN(float, float, X - Y); return PC_OK;
        case PC_BIN_MUL: PC_BIN_RUN(float, float, X * Y); return PC_OK;
        case PC_BIN_DIV: PC_BIN_RUN(float, float, X / Y); return PC_OK;
        case PC_BIN_POW: PC_BIN_RUN(float, float, powf(X, Y)); return PC_OK;
        case PC_BIN_MAXIMUM: PC_BIN_RUN(float, float, PC_MAXF(X, Y)); return PC_OK;
        case PC_BIN_MINIMUM: PC_BIN_RUN(float, float, PC_MINF(X, Y)); return PC_OK;
        default: return PC_ERR_ARG;
        }
    }
    if (dt_in == PC_F32 && dt_out == PC_BOOL) {
        switch (op) { PC_BIN_CMP_CASES(float) default: return PC_ERR_ARG; }
    }
    if (dt_in == PC_I64 && dt_out == PC_I64) {
        switch (op) {
        case PC_BIN_ADD: PC_BIN_RUN(int64_t, int64_t, X + Y); return PC_OK;
        case PC_BIN_SUB: PC_BIN_RUN(int64_t, int64_t, X - Y); return PC_OK;
        case PC_BIN_MUL: PC_BIN_RUN(int64_t, int64_t, X * Y); return PC_OK;
        case PC_BIN_POW: PC_BIN_RUN(int64_t, int64_t, pc_ipow(X, Y)); return PC_OK;
        case PC_BIN_MAXIMUM: PC_BIN_RUN(int64_t, int64_t, PC_MAXI(X, Y)); return PC_OK;
        case PC_BIN_MINIMUM: PC_BIN_RUN(int64_t, int64_t, PC_MINI(X, Y)); return PC_OK;
        case PC_BIN_AND: PC_BIN_RUN(int64_t, int64_t, X & Y); return PC_OK;
        case PC_BIN_OR: PC_BIN_RUN(int64_t, int64_t, X | Y); return PC_OK;
        default: return PC_ERR_ARG;
        }
    }
    if (dt_in == PC_I64 && dt_out == PC_F32) { /* true division / pow into float */
        switch (op) {
        case PC_BIN_DIV: PC_BIN_RUN(int64_t, float, (double)X / (double)Y); return PC_OK;
        default: return PC_ERR_ARG;
        }
    }
    if (dt_in == PC_I64 && dt_out == PC_BOOL) {
        switch (op) { PC_BIN_CMP_CASES(int64_t) default: return PC_ERR_ARG; }
    }
    if (dt_in == PC_BOOL && dt_out == PC_BOOL) {
        switch (op) {
        PC_BIN_CMP_CASES(uint8_t)
        case PC_BIN_ADD: case PC_BIN_MAXIMUM: PC_BIN_RUN(uint8_t, uint8_t, X | Y); return PC_OK;
        case PC_BIN_MUL: case PC_BIN_MINIMUM: PC_BIN_RUN(uint8_t, uint8_t, X & Y); return PC_OK;
        default: return PC_ERR_ARG;
        }
    }
    return PC_ERR_ARG;
}

static int dt_size(int dt) { return dt == PC_F32 ? 4 : (dt == PC_I64 ? 8 : 1); }

int pc_binary(int op, int dt_in, int dt_out, int rank, const int64_t* shape, const void* a,
              const int64_t* a_strides, const void* b, const int64_t* b_strides, void* out) {
    pc_nd it;
    const int64_t* st[2] = {a_strides, b_strides};
    int rc = pc_nd_init(&it, rank, shape, 2, st);
    if (rc) return rc;
    int64_t n = it.shape[it.rank - 1];
    int64_t outer = pc_nd_outer(&it);
    if (n == 0 || outer == 0) return PC_OK;
    /* validate the combination once on an empty run */
    rc = bin_run(op, dt_in, dt_out, 0, a, 0, b, 0, out);
    if (rc) return rc;
    int64_t sa = it.st[0][it.rank - 1], sb = it.st[1][it.rank - 1];
    const char* A = (const char*)a;
    const char* B = (const char*)b;
    char* O = (char*)out;
    int si = dt_size(dt_in), so = dt_size(dt_out);
    if (outer == 1) {
        /* one long run: split it across threads */
        int nt = pc_nt(n, PC_GRAIN);
        #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (int c = 0; c < nt; c++) {
            int64_t lo = n * c / nt, hi = n * (c + 1) / nt;
            bin_run(op, dt_in, dt_out, hi - lo, A + lo * sa * si, sa, B + lo * sb * si, sb,
                    O + lo * so);
        }
        return PC_OK;
    }
    int nt = pc_nt(outer * n, PC_GRAIN);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t o = 0; o < outer; o++) {
        int64_t off[2];
        pc_nd_offsets(&it, o, off);
        bin_run(op, dt_in, dt_out, n, A + off[0] * si, sa, B + off[1] * si, sb,
                O + o * n * so);
    }
    return PC_OK;
}

/* ---------------------------------------------------------------- scalar */

#define PC_MAP(TI, TO, EXPR)                                                      \
    do {                                                                          \
        if (sizeof(TI) == sizeof(TO) && (const void*)x_ == (const void*)o_) {     \
            TO* PC_R po = (TO*)o_; /* in place */                                 \
            const TI* px = (const TI*)po;                                         \
            for (int64_t i = 0; i < n; i++) { TI X = px[i]; po[i] = (TO)(EXPR); } \
        } else {                                                                  \
            const TI* PC_R px = (const TI*)x_;                                    \
            TO* PC_R po = (TO*)o_;                                                \
            for (int64_t i = 0; i < n; i++) { TI X = px[i]; po[i] = (TO)(EXPR); } \
        }                                                                         \
    } while (0)

static int scalar_run(int op, int dt, double value, int64_t n, const void* x_, void* o_) {
    if (dt == PC_F32) {
        const float v = (float)value;
        switch (op) {
        case PC_SC_ADD: PC_MAP(float, float, X + v); return PC_OK;
        case PC_SC_MUL: PC_MAP(float, float, X * v); return PC_OK;
        case PC_SC_SUB: PC_MAP(float, float, X - v); return PC_OK;
        case PC_SC_RSUB: PC_MAP(float, float, v - X); return PC_OK;
        case PC_SC_DIV: PC_MAP(float, float, X / v); return PC_OK;
        case PC_SC_RDIV: PC_MAP(float, float, v / X); return PC_OK;
        case PC_SC_POW:
            if (v == 2.0f) PC_MAP(float, float, X * X);
            else if (v == 3.0f) PC_MAP(float, float, X * X * X);
            else if (v == 1.0f) PC_MAP(float, float, X);
            else if (v == 0.5f) PC_MAP(float, float, sqrtf(X));
            else if (v == -1.0f) PC_MAP(float, float, 1.0f / X);
            else PC_MAP(float, float, powf(X, v));
            return PC_OK;
        case PC_SC_MAXIMUM: PC_MAP(float, float, PC_MAXF(X, v)); return PC_OK;
        case PC_SC_MINIMUM: PC_MAP(float, float, PC_MINF(X, v)); return PC_OK;
        default: return PC_ERR_ARG;
        }
    }
    if (dt == PC_I64) {
        const int64_t v = (int64_t)value;
        if ((double)v != value) return PC_ERR_ARG;
        switch (op) {
        case PC_SC_ADD: PC_MAP(int64_t, int64_t, X + v); return PC_OK;
        case PC_SC_MUL: PC_MAP(int64_t, int64_t, X * v); return PC_OK;
        case PC_SC_SUB: PC_MAP(int64_t, int64_t, X - v); return PC_OK;
        case PC_SC_RSUB: PC_MAP(int64_t, int64_t, v - X); return PC_OK;
        case PC_SC_POW: PC_MAP(int64_t, int64_t, pc_ipow(X, v)); return PC_OK;
        case PC_SC_MAXIMUM: PC_MAP(int64_t, int64_t, PC_MAXI(X, v)); return PC_OK;
        case PC_SC_MINIMUM: PC_MAP(int64_t, int64_t, PC_MINI(X, v)); return PC_OK;
        default: return PC_ERR_ARG;
        }
    }
    return PC_ERR_ARG;
}

int pc_scalar(int op, int dt, const void* x, double value, void* out, int64_t n) {
    int rc = scalar_run(op, dt, value, 0, x, out);
    if (rc || n <= 0) return rc;
    int s = dt_size(dt);
    int nt = pc_nt(n, PC_GRAIN);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int c = 0; c < nt; c++) {
        int64_t lo = n * c / nt, hi = n * (c + 1) / nt;
        scalar_run(op, dt, value, hi - lo, (const char*)x + lo * s, (char*)out + lo * s);
    }
    return PC_OK;
}

/* ---------------------------------------------------------------- unary */

static int unary_run(int op, int dt, int64_t n, const void* x_, void* o_) {
    if (dt == PC_F32) {
        switch (op) {
        case PC_UN_RELU: PC_MAP(float, float, pc_relu(X)); return PC_OK;
        case PC_UN_GELU: PC_MAP(float, float, pc_gelu(X)); return PC_OK;
        case PC_UN_GELU_TANH: PC_MAP(float, float, pc_gelu_tanh(X)); return PC_OK;
        case PC_UN_SILU: PC_MAP(float, float, pc_silu(X)); return PC_OK;
        case PC_UN_SIGMOID: PC_MAP(float, float, pc_sigmoid(X)); return PC_OK;
        case PC_UN_TANH: PC_MAP(float, float, pc_tanh(X)); return PC_OK;
        case PC_UN_EXP: PC_MAP(float, float, pc_exp(X)); return PC_OK;
        case PC_UN_LOG: PC_MAP(float, float, logf(X)); return PC_OK;
        case PC_UN_NEG: PC_MAP(float, float, -X); return PC_OK;
        case PC_UN_SQRT: PC_MAP(float, float, sqrtf(X)); return PC_OK;
        case PC_UN_RSQRT: PC_MAP(float, float, 1.0f / sqrtf(X)); return PC_OK;
        case PC_UN_ABS: PC_MAP(float, float, fabsf(X)); return PC_OK;
        case PC_UN_COS: PC_MAP(float, float, cosf(X)); return PC_OK;
        case PC_UN_SIN: PC_MAP(float, float, sinf(X)); return PC_OK;
        case PC_UN_SQUARE: PC_MAP(float, float, X * X); return PC_OK;
        case PC_UN_RECIPROCAL: PC_MAP(float, float, 1.0f / X); return PC_OK;
        case PC_UN_ERF: PC_MAP(float, float, pc_erf(X)); return PC_OK;
        default: return PC_ERR_ARG;
        }
    }
    if (dt == PC_I64) {
        switch (op) {
        case PC_UN_NEG: PC_MAP(int64_t, int64_t, -X); return PC_OK;
        case PC_UN_ABS: PC_MAP(int64_t, int64_t, X < 0 ? -X : X); return PC_OK;
        case PC_UN_RELU: PC_MAP(int64_t, int64_t, X > 0 ? X : 0); return PC_OK;
        case PC_UN_SQUARE: PC_MAP(int64_t, int64_t, X * X); return PC_OK;
        default: return PC_ERR_ARG;
        }
    }
    if (dt == PC_BOOL) {
        switch (op) {
        case PC_UN_NOT: PC_MAP(uint8_t, uint8_t, X == 0); return PC_OK;
        default: return PC_ERR_ARG;
        }
    }
    return PC_ERR_ARG;
}

int pc_unary(int op, int dt, const void* x, void* out, int64_t n) {
    int rc = unary_run(op, dt, 0, x, out);
    if (rc || n <= 0) return rc;
    int s = dt_size(dt);
    /* transcendental ops cost more per element: thread them earlier */
    int64_t grain = (op == PC_UN_NEG || op == PC_UN_ABS || op == PC_UN_RELU ||
                     op == PC_UN_SQUARE || op == PC_UN_NOT) ? PC_GRAIN : PC_GRAIN / 8;
    int nt = pc_nt(n, grain);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int c = 0; c < nt; c++) {
        int64_t lo = n * c / nt, hi = n * (c + 1) / nt;
        unary_run(op, dt, hi - lo, (const char*)x + lo * s, (char*)out + lo * s);
    }
    return PC_OK;
}

/* ---------------------------------------------------------------- swiglu */

int pc_swiglu(const float* gate, const float* up, float* out, int64_t n) {
    int nt = pc_nt(n, PC_GRAIN / 8);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int c = 0; c < nt; c++) {
        int64_t lo = n * c / nt, hi = n * (c + 1) / nt;
        if (gate == out || up == out) { /* in place over one input */
            float* PC_R o = out + lo;
            const float* g = gate == out ? o : gate + lo;
            const float* u = up == out ? o : up + lo;
            for (int64_t i = 0; i < hi - lo; i++) o[i] = pc_silu(g[i]) * u[i];
        } else {
            const float* PC_R g = gate + lo;
            const float* PC_R u = up + lo;
            float* PC_R o = out + lo;
            for (int64_t i = 0; i < hi - lo; i++) o[i] = pc_silu(g[i]) * u[i];
        }
    }
    return PC_OK;
}

/* ---------------------------------------------------------------- where */

#define PC_WHERE_RUN(T)                                                              \
    do {                                                                             \
        const T* PC_R pa = (const T*)a_;                                             \
        const T* PC_R pb = (const T*)b_;                                             \
        T* PC_R po = (T*)o_;                                                         \
        if (sc == 1 && sa == 1 && sb == 1) {                                         \
            for (int64_t i = 0; i < n; i++) po[i] = c_[i] ? pa[i] : pb[i];           \
        } else {                                                                     \
            for (int64_t i = 0; i < n; i++) po[i] = c_[i * sc] ? pa[i * sa] : pb[i * sb]; \
        }                                                                            \
    } while (0)

static void where_run(int es, int64_t n, const uint8_t* PC_R c_, int64_t sc, const void* a_,
                      int64_t sa, const void* b_, int64_t sb, void* o_) {
    switch (es) {
    case 1: PC_WHERE_RUN(uint8_t); break;
    case 2: PC_WHERE_RUN(uint16_t); break;
    case 4: PC_WHERE_RUN(uint32_t); break;
    default: PC_WHERE_RUN(uint64_t); break;
    }
}

int pc_where(int elem_size, int rank, const int64_t* shape, const uint8_t* cond,
             const int64_t* cond_strides, const void* a, const int64_t* a_strides,
             const void* b, const int64_t* b_strides, void* out) {
    if (elem_size != 1 && elem_size != 2 && elem_size != 4 && elem_size != 8) return PC_ERR_ARG;
    pc_nd it;
    const int64_t* st[3] = {cond_strides, a_strides, b_strides};
    int rc = pc_nd_init(&it, rank, shape, 3, st);
    if (rc) return rc;
    int64_t n = it.shape[it.rank - 1], outer = pc_nd_outer(&it);
    if (n == 0 || outer == 0) return PC_OK;
    int64_t sc = it.st[0][it.rank - 1], sa = it.st[1][it.rank - 1], sb = it.st[2][it.rank - 1];
    int nt = pc_nt(outer * n, PC_GRAIN);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t o = 0; o < outer; o++) {
        int64_t off[3];
        pc_nd_offsets(&it, o, off);
        where_run(elem_size, n, cond + off[0], sc, (const char*)a + off[1] * elem_size, sa,
                  (const char*)b + off[2] * elem_size, sb, (char*)out + o * n * elem_size);
    }
    return PC_OK;
}

/* ---------------------------------------------------------------- copy */

#define PC_COPY_RUN(T)                                                           \
    do {                                                                         \
        const T* PC_R px = (const T*)x_;                                         \
        T* PC_R po = (T*)o_;                                                     \
        if (sx == 0) { T v = px[0]; for (int64_t i = 0; i < n; i++) po[i * so] = v; } \
        else if (so == 1) for (int64_t i = 0; i < n; i++) po[i] = px[i * sx];    \
        else for (int64_t i = 0; i < n; i++) po[i * so] = px[i * sx];            \
    } while (0)

static void copy_run(int es, int64_t n, const void* x_, int64_t sx, void* o_, int64_t so) {
    if (sx == 1 && so == 1) { memcpy(o_, x_, (size_t)(n * es)); return; }
    switch (es) {
    case 1: PC_COPY_RUN(uint8_t); break;
    case 2: PC_COPY_RUN(uint16_t); break;
    case 4: PC_COPY_RUN(uint32_t); break;
    default: PC_COPY_RUN(uint64_t); break;
    }
}

int pc_copy(int elem_size, int rank, const int64_t* shape, const void* x,
            const int64_t* x_strides, void* out, const int64_t* out_strides) {
    if (elem_size != 1 && elem_size != 2 && elem_size != 4 && elem_size != 8) return PC_ERR_ARG;
    if (rank > PC_MAX_RANK) return PC_ERR_RANK;
    int64_t contig[PC_MAX_RANK];
    if (!out_strides) {
        int64_t acc = 1;
        for (int d = rank - 1; d >= 0; d--) { contig[d] = acc; acc *= shape[d] > 1 ? shape[d] : 1; }
        out_strides = contig;
    }
    pc_nd it;
    const int64_t* st[2] = {x_strides, out_strides};
    int rc = pc_nd_init(&it, rank, shape, 2, st);
    if (rc) return rc;
    int64_t n = it.shape[it.rank - 1], outer = pc_nd_outer(&it);
    if (n == 0 || outer == 0) return PC_OK;
    int64_t sx = it.st[0][it.rank - 1], so = it.st[1][it.rank - 1];
    const char* X = (const char*)x;
    char* O = (char*)out;
    if (outer == 1) {
        int nt = pc_nt(n, 4 * PC_GRAIN);
        #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (int c = 0; c < nt; c++) {
            int64_t lo = n * c / nt, hi = n * (c + 1) / nt;
            copy_run(elem_size, hi - lo, X + lo * sx * elem_size, sx, O + lo * so * elem_size, so);
        }
        return PC_OK;
    }
    int nt = pc_nt(outer * n, 4 * PC_GRAIN);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t o = 0; o < outer; o++) {
        int64_t off[2];
        pc_nd_offsets(&it, o, off);
        copy_run(elem_size, n, X + off[0] * elem_size, sx, O + off[1] * elem_size, so);
    }
    return PC_OK;
}

/* ---------------------------------------------------------------- cast */

int pc_cast(int dt_in, int dt_out, const void* x_, void* o_, int64_t n) {
    if (dt_in == dt_out) {
        if (x_ != o_) memcpy(o_, x_, (size_t)(n * dt_size(dt_in)));
        return PC_OK;
    }
    if (dt_in == PC_F32 && dt_out == PC_I64) PC_MAP(float, int64_t, X);
    else if (dt_in == PC_F32 && dt_out == PC_BOOL) PC_MAP(float, uint8_t, X != 0.0f);
    else if (dt_in == PC_I64 && dt_out == PC_F32) PC_MAP(int64_t, float, X);
    else if (dt_in == PC_I64 && dt_out == PC_BOOL) PC_MAP(int64_t, uint8_t, X != 0);
    else if (dt_in == PC_BOOL && dt_out == PC_F32) PC_MAP(uint8_t, float, X != 0);
    else if (dt_in == PC_BOOL && dt_out == PC_I64) PC_MAP(uint8_t, int64_t, X != 0);
    else return PC_ERR_ARG;
    return PC_OK;
}
