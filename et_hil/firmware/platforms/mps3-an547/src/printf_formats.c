/*
 * et-hil platform layer for QEMU's "mps3-an547" machine: C99 printf length
 * modifiers.
 *
 * Debian's newlib (libnewlib-arm-none-eabi 3.3.0, the full libc.a, not nano)
 * is built without --enable-newlib-io-c99-formats: its printf knows "ll" but
 * not "z", "t", "j" or "hh". ExecuTorch's log lines use %zu and %zd
 * throughout ("expected tensor rank in [1, %zu], got %zu", "KernelCall failed
 * at instruction %zu:%zu in operator %s"), so every number in them printed as
 * "zu", and the arguments after it were read from the wrong place: a "%s"
 * later in the same line printed garbage or faulted. Arm's own GNU toolchain
 * (the one upstream builds with) has these formats in its full newlib; only
 * its nano variant lacks them (upstream's
 * backends/arm/cmake/ArmRunnerUtils.cmake, arm_runner_link_minimal_specs).
 *
 * Every printf-family function of newlib ends in _vfprintf_r (streams) or
 * _svfprintf_r (strings), in object files of their own, so the link wraps
 * those two (and vfprintf, which calls _vfprintf_r inside its own object):
 * a format with a C99 modifier is rewritten into one this newlib knows and
 * the call goes on with the same arguments. On this ABI (AAPCS, ILP32) size_t
 * and ptrdiff_t are int-sized, so "z" and "t" are dropped; intmax_t is long
 * long, so "j" becomes "ll"; "hh" is dropped (the argument arrives promoted to
 * int, holding the char's value already). Formats without them are passed on
 * untouched.
 *
 * SPDX-License-Identifier: BSD-3-Clause
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

_Static_assert(sizeof(size_t) == sizeof(int), "%zu is rewritten as %u");
_Static_assert(sizeof(ptrdiff_t) == sizeof(int), "%td is rewritten as %d");
_Static_assert(sizeof(intmax_t) == sizeof(long long), "%jd is rewritten as %lld");

/* Longer formats are passed on as they are (none of the runtime's is). */
#define FORMAT_MAX 320U

struct _reent;
int __real__vfprintf_r(struct _reent* reent, FILE* stream, const char* format, va_list args);
int __real__svfprintf_r(struct _reent* reent, FILE* stream, const char* format, va_list args);
int __real_vfprintf(FILE* stream, const char* format, va_list args);
int __wrap__vfprintf_r(struct _reent* reent, FILE* stream, const char* format, va_list args);
int __wrap__svfprintf_r(struct _reent* reent, FILE* stream, const char* format, va_list args);
int __wrap_vfprintf(FILE* stream, const char* format, va_list args);

/* Writes the rewritten format into out; returns format itself when it has no
 * C99 length modifier or does not fit. */
static const char* c99_to_newlib(const char* format, char* out, size_t size) {
  const char* in = format;
  size_t n = 0;
  int changed = 0;
  /* Each step writes at most 3 characters ("%", then "ll" for "j"); one more
   * is kept for the terminator. */
  while (*in != '\0') {
    if (n + 4U > size) {
      return format;
    }
    const char c = *in++;
    out[n++] = c;
    if (c != '%') {
      continue;
    }
    if (*in == '%') {
      out[n++] = *in++;
      continue;
    }
    /* flags, width, precision */
    while ((*in >= '0' && *in <= '9') || *in == '-' || *in == '+' || *in == ' ' ||
           *in == '#' || *in == '.' || *in == '*') {
      if (n + 4U > size) {
        return format;
      }
      out[n++] = *in++;
    }
    if (*in == 'z' || *in == 't') {
      in++;
      changed = 1;
    } else if (*in == 'j') {
      in++;
      out[n++] = 'l';
      out[n++] = 'l';
      changed = 1;
    } else if (in[0] == 'h' && in[1] == 'h') {
      in += 2;
      changed = 1;
    }
  }
  if (!changed) {
    return format;
  }
  out[n] = '\0';
  return out;
}

int __wrap__vfprintf_r(struct _reent* reent, FILE* stream, const char* format, va_list args) {
  char buffer[FORMAT_MAX];
  return __real__vfprintf_r(reent, stream, c99_to_newlib(format, buffer, sizeof buffer), args);
}

int __wrap__svfprintf_r(struct _reent* reent, FILE* stream, const char* format, va_list args) {
  char buffer[FORMAT_MAX];
  return __real__svfprintf_r(reent, stream, c99_to_newlib(format, buffer, sizeof buffer), args);
}

int __wrap_vfprintf(FILE* stream, const char* format, va_list args) {
  char buffer[FORMAT_MAX];
  return __real_vfprintf(stream, c99_to_newlib(format, buffer, sizeof buffer), args);
}
