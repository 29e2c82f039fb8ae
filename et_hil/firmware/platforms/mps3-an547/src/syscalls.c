/*
 * et-hil platform layer for QEMU's "mps3-an547" machine: the heap.
 *
 * librdimon's weak _sbrk() grows the heap from the linker symbol "end" up to
 * the current stack pointer, and takes a limit from SYS_HEAPINFO, which QEMU
 * 7.2 answers wrongly. This one hands out the linker script's heap region
 * (__HeapBase .. __HeapLimit, in DDR) and nothing beyond it.
 *
 * It also supplies two functions Debian's newlib build lacks: posix_memalign()
 * (its aligned_alloc() calls it) and getentropy() (std::random_device and
 * arc4random() call it; the rand, randn and native_dropout kernels use them).
 * The board has no entropy source, so getentropy() gives a fixed
 * pseudo-random sequence: random kernels repeat from run to run.
 *
 * SPDX-License-Identifier: BSD-3-Clause
 */
#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>

int posix_memalign(void** memptr, size_t alignment, size_t size);
int getentropy(void* buffer, size_t length);

extern char __HeapBase;
extern char __HeapLimit;

void* _sbrk(ptrdiff_t increment) {
  static char* heap_end = NULL;
  if (heap_end == NULL) {
    heap_end = &__HeapBase;
  }
  char* const previous = heap_end;
  if ((increment > 0 && (size_t)increment > (size_t)(&__HeapLimit - heap_end)) ||
      (increment < 0 && (size_t)(-increment) > (size_t)(heap_end - &__HeapBase))) {
    errno = ENOMEM;
    return (void*)-1;
  }
  heap_end += increment;
  return previous;
}

int posix_memalign(void** memptr, size_t alignment, size_t size) {
  if (alignment < sizeof(void*) || (alignment & (alignment - 1U)) != 0U) {
    return EINVAL;
  }
  void* const block = memalign(alignment, size);
  if (block == NULL) {
    return ENOMEM;
  }
  *memptr = block;
  return 0;
}

int getentropy(void* buffer, size_t length) {
  static uint32_t state = 0x2545F491U; /* xorshift32, fixed seed */
  if (length > 256U) {
    errno = EIO; /* the limit POSIX sets */
    return -1;
  }
  unsigned char* out = buffer;
  for (size_t i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    out[i] = (unsigned char)state;
  }
  return 0;
}
