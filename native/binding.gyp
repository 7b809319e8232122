# The optional native build of the project's C kernels (see native/src/addon.c), built by
# `npm ci`/`npm install` through scripts/build-native.js where a C compiler and Node's headers
# exist; the wasm kernels run where it is absent. Each instruction-set variant compiles the same
# kernel sources with its own flags; the addon picks one at load. Floating-point contraction is
# off so that results match the wasm build's (no fused multiply-add where the C has a multiply
# and an add).
{
  'target_defaults': {
    'cflags': ['-O3', '-ffp-contract=off', '-fno-strict-aliasing', '-std=gnu11'],
    'cflags!': ['-O2', '-O0'],
    'include_dirs': ['src'],
    'xcode_settings': {
      'OTHER_CFLAGS': ['-O3', '-ffp-contract=off', '-fno-strict-aliasing'],
    },
  },
  'targets': [
    {
      'target_name': 'cnn_classroom_kernels',
      'sources': ['src/addon.c'],
      'conditions': [
        ['target_arch=="x64"', {
          'dependencies': ['kernels_avx512', 'kernels_avx2', 'kernels_base', 'kernels_wide'],
        }, {
          'dependencies': ['kernels_base'],
        }],
      ],
    },
    {
      'target_name': 'kernels_base',
      'type': 'static_library',
      'defines': ['CC_VARIANT=base_'],
      'cflags': ['-include', 'rename.h'],
      'sources': ['../wasm/heap-kernels.c', '../wasm/winograd.c', '../wasm/depthwise.c',
                  'src/variant.c'],
    },
  ],
  'conditions': [
    ['target_arch=="x64"', {
      'targets': [
        {
          'target_name': 'kernels_avx512',
          'type': 'static_library',
          'defines': ['CC_VARIANT=avx512_'],
          'cflags': ['-include', 'rename.h', '-mavx512f', '-mavx512vl', '-mavx512bw',
                     '-mavx512dq', '-mavx2', '-mfma', '-mprefer-vector-width=512'],
          'sources': ['../wasm/heap-kernels.c', '../wasm/winograd.c', '../wasm/depthwise.c',
                      'src/variant.c'],
        },
        {
          # Kernels written for wide vectors (src/wide.c): baseline flags, each function with its
          # instruction set as a target attribute; they use fused multiply-adds on purpose, so
          # they agree with the wasm build within float32 rounding rather than bit for bit.
          'target_name': 'kernels_wide',
          'type': 'static_library',
          'cflags': ['-ffp-contract=fast'],
          'sources': ['src/wide.c'],
        },
        {
          'target_name': 'kernels_avx2',
          'type': 'static_library',
          'defines': ['CC_VARIANT=avx2_'],
          'cflags': ['-include', 'rename.h', '-mavx2', '-mfma'],
          'sources': ['../wasm/heap-kernels.c', '../wasm/winograd.c', '../wasm/depthwise.c',
                      'src/variant.c'],
        },
      ],
    }],
  ],
}
