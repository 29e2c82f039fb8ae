/*
 * et-hil platform layer for QEMU's "mps3-an547" machine: the program's
 * command line, read with semihosting.
 *
 * QEMU joins its "-semihosting-config arg=..." values with single blanks, so
 * splitting at blanks gives the arguments back (an argument cannot contain a
 * blank). The FVP's "cpu0.semihosting-cmd_line" behaves the same way.
 *
 * SPDX-License-Identifier: BSD-3-Clause
 */
#include <stddef.h>
#include <stdint.h>

#include "mps3_an547_platform.h"

#define SYS_GET_CMDLINE 0x15U
#define CMDLINE_MAX 2048U
#define ARGV_MAX 64U

static char cmdline[CMDLINE_MAX];
static char* argv_table[ARGV_MAX + 1U];

/* One semihosting call: operation in r0, parameter block in r1, result in
 * r0. BKPT 0xAB is the M-profile semihosting trap. */
static int32_t semihosting_call(uint32_t operation, void* parameters) {
  register uint32_t r0 __asm__("r0") = operation;
  register void* r1 __asm__("r1") = parameters;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return (int32_t)r0;
}

static int is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int mps3_an547_semihosting_argv(char*** argv) {
  struct {
    char* buffer;
    uint32_t length;
  } block = {cmdline, CMDLINE_MAX - 1U};

  int argc = 0;
  if (semihosting_call(SYS_GET_CMDLINE, &block) == 0) {
    cmdline[block.length < CMDLINE_MAX ? block.length : CMDLINE_MAX - 1U] = '\0';
    char* p = cmdline;
    while (*p != '\0' && argc < (int)ARGV_MAX) {
      while (is_blank(*p)) {
        *p++ = '\0';
      }
      if (*p == '\0') {
        break;
      }
      argv_table[argc++] = p;
      while (*p != '\0' && !is_blank(*p)) {
        p++;
      }
    }
  }
  argv_table[argc] = NULL;
  *argv = argv_table;
  return argc;
}
