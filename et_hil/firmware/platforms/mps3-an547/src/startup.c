/*
 * et-hil platform layer for QEMU's "mps3-an547" machine: vector table and
 * reset handler.
 *
 * The reset handler does what newlib's crt0 would do, minus the part that
 * breaks on QEMU 7.2: crt0 asks the debugger for the heap and stack
 * (SYS_HEAPINFO) and QEMU answers with a stack inside ITCM. Here the stack
 * comes from the vector table (the linker script's __StackTop), the heap from
 * the linker script (see syscalls.c) and argv from SYS_GET_CMDLINE
 * (semihosting.c).
 *
 * SPDX-License-Identifier: BSD-3-Clause
 */
#include <stdint.h>
#include <stdlib.h>

#include "mps3_an547.h"
#include "mps3_an547_platform.h"

/* Linker-script symbols. */
extern uint32_t __StackTop;
extern uint32_t __StackLimit;
/* Copy and zero tables (own names: CMSIS's cmsis_gcc_m.h declares the
 * usual __copy_table_start__ names inside its __cmsis_start()). */
struct copy_entry {
  const uint32_t* src;
  uint32_t* dest;
  uint32_t words;
};
struct zero_entry {
  uint32_t* dest;
  uint32_t words;
};
extern const struct copy_entry mps3_copy_table_start[];
extern const struct copy_entry mps3_copy_table_end[];
extern const struct zero_entry mps3_zero_table_start[];
extern const struct zero_entry mps3_zero_table_end[];

/* newlib and librdimon. */
extern void __libc_init_array(void);
extern void initialise_monitor_handles(void);

/* The application. */
extern int main(int argc, char** argv);

void Reset_Handler(void) __attribute__((noreturn));
/* Exception handlers: faults.c (weak where a program may claim them). */
void Default_Handler(void);
void HardFault_Handler(void);
void NMI_Handler(void);
void MemManage_Handler(void);
void BusFault_Handler(void);
void UsageFault_Handler(void);
void SecureFault_Handler(void);
void SVC_Handler(void);
void DebugMon_Handler(void);
void PendSV_Handler(void);
void SysTick_Handler(void);

typedef void (*vector_t)(void);

/* 16 core entries, then the device interrupts. The first entry is the
 * initial stack pointer, as the architecture defines it. */
__attribute__((section(".vectors"), used, aligned(512))) const vector_t
    __vector_table[16U + MPS3_AN547_DEVICE_IRQ_COUNT] = {
        [0] = (vector_t)&__StackTop,
        [1] = Reset_Handler,
        [2] = NMI_Handler,
        [3] = HardFault_Handler,
        [4] = MemManage_Handler,
        [5] = BusFault_Handler,
        [6] = UsageFault_Handler,
        [7] = SecureFault_Handler,
        [11] = SVC_Handler,
        [12] = DebugMon_Handler,
        [14] = PendSV_Handler,
        [15] = SysTick_Handler,
        [16 ... 16U + MPS3_AN547_DEVICE_IRQ_COUNT - 1U] = Default_Handler,
};

/* Copy initialised data (.data and the sections the linker script loads
 * from DDR) and zero .bss, as the copy and zero tables describe. */
static void init_memory(void) {
  for (const struct copy_entry* entry = mps3_copy_table_start;
       entry < mps3_copy_table_end;
       entry++) {
    for (uint32_t i = 0; i < entry->words; i++) {
      entry->dest[i] = entry->src[i];
    }
  }
  for (const struct zero_entry* entry = mps3_zero_table_start;
       entry < mps3_zero_table_end;
       entry++) {
    for (uint32_t i = 0; i < entry->words; i++) {
      entry->dest[i] = 0U;
    }
  }
}

/* Kept out of line so that nothing the compiler emits for it (FP or Helium
 * registers) runs before the coprocessors are enabled. */
static void __attribute__((noinline, noreturn)) start_c_runtime(void) {
  init_memory();
  SCB->VTOR = (uint32_t)(uintptr_t)__vector_table;
  __DSB();
  __ISB();

  initialise_monitor_handles(); /* librdimon: stdin/stdout/stderr handles */
  __libc_init_array(); /* C++ constructors: kernel registration */

  char** argv = NULL;
  const int argc = mps3_an547_semihosting_argv(&argv);
  exit(main(argc, argv));
}

void Reset_Handler(void) {
  /* Stack overflow faults instead of running into .bss and the heap. */
  __set_MSPLIM((uint32_t)(uintptr_t)&__StackLimit);
  /* Full access to CP10/CP11: the FPU and Helium (MVE). */
  SCB->CPACR |= (3UL << 20U) | (3UL << 22U);
  __DSB();
  __ISB();
  start_c_runtime();
}
