/* Register-blocking parameters and vector types for the micro-kernels (GCC vector
 * extensions: one pc_vf is a full AVX-512, AVX or SSE register, whichever the build has). */
#ifndef PC_VEC_H
#define PC_VEC_H

#if defined(__AVX512F__)
#define PC_VL 16 /* floats per register */
#define PC_MR 8  /* rows per micro-kernel: 2 * PC_MR accumulators + operands fit 32 zmm */
#elif defined(__AVX__)
#define PC_VL 8
#define PC_MR 6  /* 12 accumulators of 16 ymm */
#else
#define PC_VL 4
#define PC_MR 4
#endif
#define PC_NR (2 * PC_VL) /* columns per micro-kernel (two registers) */

typedef float pc_vf __attribute__((vector_size(PC_VL * 4)));                 /* aligned */
typedef float pc_vfu __attribute__((vector_size(PC_VL * 4), aligned(4)));    /* unaligned */

#endif
