/*
 * One instruction-set variant's table of kernels, compiled with that variant's flags and with
 * rename.h forced in (native/binding.gyp), so each name below is the variant's copy
 * (sum_rows is avx512_sum_rows in the AVX-512 variant).
 */
#include "kernels.h"

#define CC_DECLARE(ret, name, args) ret name args;
CC_KERNELS(CC_DECLARE)

const struct cc_kernels CC_PASTE(CC_VARIANT, kernels) = {
#define CC_ENTRY(ret, name, args) name,
    CC_KERNELS(CC_ENTRY)
#undef CC_ENTRY
};
