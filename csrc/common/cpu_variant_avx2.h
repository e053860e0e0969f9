// Switches the rest of a <kernel>_cpu_avx2.cpp to the AVX2 + FMA target and to
// namespace avx2 (SF_CPU_VARIANT). Include it after every other header of that
// file, which stay compiled for the baseline target (helpers they define inline
// into the kernels and take their target), and just before the kernel's
// <kernel>_cpu_kernels.h. The file wraps everything in
// `#if SF_CPU_AVX2_VARIANTS` (from common/cpu_variants.h), so that elsewhere it
// compiles to nothing. No include guard: it is included once, by such a file.
#if !SF_CPU_AVX2_VARIANTS
#error "include common/cpu_variant_avx2.h only under #if SF_CPU_AVX2_VARIANTS"
#endif
#ifdef SF_CPU_VARIANT
#error "common/cpu_variant_avx2.h: SF_CPU_VARIANT is already defined"
#endif

#pragma GCC target("avx2,fma")
#define SF_CPU_VARIANT avx2
// AVX2 implies SSE4.1, whose round instructions make the library floor one
// instruction (see lifting.h's LibraryFloor).
#define SF_CPU_HAS_SSE41 1
