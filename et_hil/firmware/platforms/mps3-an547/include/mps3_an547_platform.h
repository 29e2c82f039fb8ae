/*
 * et-hil platform layer for QEMU's "mps3-an547" machine: functions shared
 * between the platform's source files.
 *
 * SPDX-License-Identifier: BSD-3-Clause
 */
#ifndef MPS3_AN547_PLATFORM_H
#define MPS3_AN547_PLATFORM_H

#ifdef __cplusplus
extern "C" {
#endif

/* Reads the command line with semihosting SYS_GET_CMDLINE and splits it at
 * blanks. Stores a NULL-terminated argv array in *argv and returns argc (0 if
 * the debugger gives no command line). */
int mps3_an547_semihosting_argv(char*** argv);

#ifdef __cplusplus
}
#endif

#endif /* MPS3_AN547_PLATFORM_H */
