/*
 * et-hil platform layer for QEMU's "mps3-an547" machine: fault reporting.
 *
 * A fault prints one "Hard fault." line with the stacked registers and the
 * fault status registers, then ends the run with exit status 1 through
 * semihosting, so that a harness sees both the text and the status.
 * MemManage, BusFault and UsageFault are not enabled, so they escalate to
 * HardFault and are reported here too.
 *
 * SPDX-License-Identifier: BSD-3-Clause
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "mps3_an547.h"

/* The registers the core pushes on exception entry. */
struct exception_frame {
  uint32_t r0, r1, r2, r3, r12, lr, pc, xpsr;
};

void fault_report(const struct exception_frame* frame, uint32_t exc_return)
    __attribute__((used, noreturn));

void fault_report(const struct exception_frame* frame, uint32_t exc_return) {
  const uint32_t irq = __get_IPSR() & 0x1FFU;
  (void)exc_return;
  fflush(stdout);
  fprintf(
      stderr,
      "Hard fault. irq=%" PRIu32 ", pc=0x%08" PRIx32 ", lr=0x%08" PRIx32
      ", xpsr=0x%08" PRIx32 ", sp=0x%08" PRIx32 "\n",
      irq,
      frame->pc,
      frame->lr,
      frame->xpsr,
      (uint32_t)(uintptr_t)frame);
  fprintf(
      stderr,
      "            cfsr=0x%08" PRIx32 " bfar=0x%08" PRIx32 " mmfar=0x%08" PRIx32
      " hfsr=0x%08" PRIx32 "\n",
      SCB->CFSR,
      SCB->BFAR,
      SCB->MMFAR,
      SCB->HFSR);
  fflush(stderr);
  _exit(1);
}

/* Finds the stacked frame (main or process stack, from EXC_RETURN bit 2)
 * and passes it on. MSPLIM is cleared first: after a stack overflow the
 * report itself needs some stack below the limit. */
__attribute__((naked)) void HardFault_Handler(void) {
  __asm__ volatile(
      "tst lr, #4\n"
      "ite eq\n"
      "mrseq r0, msp\n"
      "mrsne r0, psp\n"
      "mov r1, lr\n"
      "movs r2, #0\n"
      "msr msplim, r2\n"
      "b fault_report\n");
}

/* Any other exception or interrupt nobody claimed. */
void Default_Handler(void);

/* Core exceptions other than reset and hard fault: weak, so that a program
 * can claim them; unclaimed ones report and stop. */
#define WEAK_DEFAULT __attribute__((weak, alias("Default_Handler")))
void NMI_Handler(void) WEAK_DEFAULT;
void MemManage_Handler(void) WEAK_DEFAULT;
void BusFault_Handler(void) WEAK_DEFAULT;
void UsageFault_Handler(void) WEAK_DEFAULT;
void SecureFault_Handler(void) WEAK_DEFAULT;
void SVC_Handler(void) WEAK_DEFAULT;
void DebugMon_Handler(void) WEAK_DEFAULT;
void PendSV_Handler(void) WEAK_DEFAULT;
void SysTick_Handler(void) WEAK_DEFAULT;

void Default_Handler(void) {
  fflush(stdout);
  fprintf(
      stderr,
      "Unexpected exception. irq=%" PRIu32 "\n",
      (uint32_t)(__get_IPSR() & 0x1FFU));
  fflush(stderr);
  _exit(1);
}
