// Which x86 vector features this CPU (and its OS) runs: the probe isa.py builds
// without any ISA flags and asks before it picks a kernel build. Non-x86: none.

extern "C" int JaxdlCpuFeatures() {
  int bits = 0;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();  // libgcc also checks the OS saves the wide registers (XGETBV)
  if (__builtin_cpu_supports("avx2")) bits |= 1;
  if (__builtin_cpu_supports("fma")) bits |= 2;
  if (__builtin_cpu_supports("avx512f")) bits |= 4;
#endif
  return bits;
}
