/* Threads, build facts, strided-iteration setup and per-thread scratch. */
#include "pc_internal.h"

#include <stdio.h>

static int g_threads = 1;

int pc_threads(void) { return g_threads; }

void pc_set_num_threads(int n) {
    if (n < 1) n = 1;
    g_threads = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    PC_BLAS_SET_THREADS(n);
}

int pc_get_num_threads(void) { return g_threads; }

#define PC_STR2(x) #x
#define PC_STR(x) PC_STR2(x)

const char* pc_build_info(void) {
    static char info[256];
    if (!info[0]) {
        const char* isa =
#if defined(__AVX512F__)
            "avx512f";
#elif defined(__AVX2__)
            "avx2";
#elif defined(__AVX__)
            "avx";
#elif defined(__SSE2__)
            "sse2";
#elif defined(__ARM_NEON)
            "neon";
#else
            "generic";
#endif
        snprintf(info, sizeof info, "openmp=%d isa=%s fma=%d blas=%s",
#ifdef _OPENMP
                 1,
#else
                 0,
#endif
                 isa,
#ifdef __FMA__
                 1,
#else
                 0,
#endif
                 PC_STR(PC_BLAS_PREFIX) "cblas_sgemm");
    }
    return info;
}

int pc_nd_init(pc_nd* it, int rank, const int64_t* shape, int nops, const int64_t* const* strides) {
    if (rank > PC_MAX_RANK || nops > 4 || rank < 0) return PC_ERR_RANK;
    it->nops = nops;
    int r = 0;
    for (int d = 0; d < rank; d++) {
        if (shape[d] == 1) continue;
        it->shape[r] = shape[d];
        for (int p = 0; p < nops; p++) it->st[p][r] = strides[p] ? strides[p][d] : 0;
        r++;
    }
    if (r == 0) { /* a scalar */
        it->shape[0] = 1;
        for (int p = 0; p < nops; p++) it->st[p][0] = 0;
        r = 1;
    }
    /* merge dimension d into d+1 when every operand steps uniformly across both */
    int w = 0;
    for (int d = 1; d < r; d++) {
        int merge = 1;
        for (int p = 0; p < nops; p++)
            if (it->st[p][w] != it->st[p][d] * it->shape[d]) { merge = 0; break; }
        if (merge) {
            it->shape[w] *= it->shape[d];
            for (int p = 0; p < nops; p++) it->st[p][w] = it->st[p][d];
        } else {
            w++;
            it->shape[w] = it->shape[d];
            for (int p = 0; p < nops; p++) it->st[p][w] = it->st[p][d];
        }
    }
    it->rank = w + 1;
    return PC_OK;
}

int64_t pc_nd_outer(const pc_nd* it) {
    int64_t o = 1;
    for (int d = 0; d < it->rank - 1; d++) o *= it->shape[d];
    return o;
}

static __thread float* tl_scratch = NULL;
static __thread size_t tl_cap = 0;

float* pc_scratch(size_t floats) {
    if (floats <= tl_cap) return tl_scratch;
    size_t cap = floats + 1024;
    size_t bytes = (cap * sizeof(float) + 63) & ~(size_t)63;
    float* p = (float*)aligned_alloc(64, bytes);
    if (!p) return NULL;
    free(tl_scratch);
    tl_scratch = p;
    tl_cap = cap;
    return p;
}
