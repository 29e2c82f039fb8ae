/*
 * et-hil platform layer for QEMU's "mps3-an547" machine (Arm MPS3 AN547:
 * SSE-300 subsystem with one Cortex-M55 r1, the CPU of Corstone-300).
 *
 * CMSIS device header: describes the core configuration to CMSIS 6's
 * core_cm55.h and lists the exception numbers. Only what the runner and the
 * platform code use is described; peripherals are not (QEMU models no NPU,
 * and the runner's I/O goes through semihosting).
 *
 * SPDX-License-Identifier: BSD-3-Clause
 */
#ifndef MPS3_AN547_H
#define MPS3_AN547_H

#ifdef __cplusplus
extern "C" {
#endif

/* Exception and interrupt numbers (negative: core exceptions). */
typedef enum IRQn {
  Reset_IRQn = -15,
  NonMaskableInt_IRQn = -14,
  HardFault_IRQn = -13,
  MemoryManagement_IRQn = -12,
  BusFault_IRQn = -11,
  UsageFault_IRQn = -10,
  SecureFault_IRQn = -9,
  SVCall_IRQn = -5,
  DebugMonitor_IRQn = -4,
  PendSV_IRQn = -2,
  SysTick_IRQn = -1,
  /* Device interrupts 0..95 exist; the runner enables none of them. */
  Device_IRQ0_IRQn = 0
} IRQn_Type;

/* Number of device interrupt vectors in the vector table. */
#define MPS3_AN547_DEVICE_IRQ_COUNT 96U

/* Core configuration, read by core_cm55.h. */
#define __CM55_REV 0x0001U          /* r0p1 */
#define __NVIC_PRIO_BITS 3U         /* SSE-300: 8 priority levels */
#define __Vendor_SysTickConfig 0U   /* CMSIS SysTick_Config is fine */
#define __VTOR_PRESENT 1U
#define __MPU_PRESENT 1U
#define __SAUREGION_PRESENT 1U
#define __FPU_PRESENT 1U
#define __FPU_DP 1U                 /* double-precision FPU */
#define __DSP_PRESENT 1U
#define __MVE_PRESENT 1U            /* Helium, integer */
#define __MVE_FP 1U                 /* Helium, floating point */
#define __ICACHE_PRESENT 1U
#define __DCACHE_PRESENT 1U
#define __PMU_PRESENT 1U            /* Armv8.1-M PMU (QEMU 7.2: reads zero) */
#define __PMU_NUM_EVENTCNT 8U

#include "core_cm55.h"

/* Memory map of the platform as the linker script uses it: the secure
 * aliases of ITCM, SRAM (BRAM), DTCM and ISRAM, which QEMU 7.2 also maps
 * 0x1000_0000 lower; DDR is one 2 GiB region from 0x6000_0000 in QEMU. */
#define MPS3_AN547_ITCM_BASE 0x10000000UL /* 512 KiB */
#define MPS3_AN547_BRAM_BASE 0x11000000UL /* 2 MiB in QEMU, 1 MiB used */
#define MPS3_AN547_DTCM_BASE 0x30000000UL /* 512 KiB */
#define MPS3_AN547_ISRAM_BASE 0x31000000UL /* 4 MiB in QEMU, 2 MiB used */
#define MPS3_AN547_DDR_BASE 0x70000000UL

#ifdef __cplusplus
}
#endif

#endif /* MPS3_AN547_H */
