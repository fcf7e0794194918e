/* virtio_abuse: every virtio-mmio device on the board (rng and balloon
 * always; blk, net and console if the VM has them), driven as a hostile
 * driver would, round after round, forever:
 *
 *   - reset, then random feature bits (VERSION_1 always, so it gets as far
 *     as DRIVER_OK);
 *   - each queue gets a random size (1..1024, capped at QueueNumMax; an
 *     eighth of the time a size that is no power of two) and its rings are
 *     placed outside RAM (anywhere in the 64-bit space, straddling the end
 *     of RAM, on top of the UART) or misaligned, or, three times in four,
 *     in RAM filled with poison: descriptors pointing into RAM (three in
 *     four), outside RAM, at the UART or across the end of RAM, with
 *     lengths small (mostly), 0, random or 4 GiB - 1, random flags (NEXT, WRITE, INDIRECT), next
 *     indexes that loop to themselves or run past the table;
 *   - then a notify storm: STORM_ROUNDS rounds in which every queue's
 *     available ring gets a random entry and its index moves on by one
 *     (by a random amount one time in 64), one descriptor is poisoned
 *     anew, the queue is notified, random words go into the device's
 *     configuration space, and interrupts are acknowledged. A device that
 *     marked itself DEVICE_NEEDS_RESET is left for the next round.
 *
 * Descriptors "in RAM" point into [BUFS, RAM_END), never at this program
 * or its rings' bookkeeping, and buffers that start below RAM are short,
 * so that the devices cannot end the attack by overwriting the program or
 * by taking its frames as reported free memory (they may scribble over
 * the rings, which is fine). */
#include "attack.h"

#define RINGS 0x80100000       /* queue q's rings at RINGS + q * RING_STRIDE */
#define RING_STRIDE 0x10000
#define AVAIL_OFF 0x8000
#define USED_OFF 0xc000
#define BUFS 0x80200000
#define BUFS_SPAN (RAM_END - BUFS)
#define STORM_ROUNDS 64
#define NQUEUES 8              /* VIRTIO_MMIO_MAX_QUEUES */

/* virtio-mmio registers (virtio 1.2, 4.2.2) */
#define V_MAGIC 0x000
#define V_DEVICE_ID 0x008
#define V_DEV_FEATURES 0x010
#define V_DEV_FEATURES_SEL 0x014
#define V_DRV_FEATURES 0x020
#define V_DRV_FEATURES_SEL 0x024
#define V_QUEUE_SEL 0x030
#define V_QUEUE_NUM_MAX 0x034
#define V_QUEUE_NUM 0x038
#define V_QUEUE_READY 0x044
#define V_QUEUE_NOTIFY 0x050
#define V_ISR 0x060
#define V_ISR_ACK 0x064
#define V_STATUS 0x070
#define V_DESC_LO 0x080
#define V_DESC_HI 0x084
#define V_AVAIL_LO 0x090
#define V_AVAIL_HI 0x094
#define V_USED_LO 0x0a0
#define V_USED_HI 0x0a4
#define V_CONFIG 0x100
#define V_NEEDS_RESET 0x40

/* Registers: s1 slot base, s2 slot number, s3 queue, s4 queue size,
 * s5 &qinfo[queue], s6 storm rounds left; a1/a2/a3 desc/avail/used. */
  ATTACK_START skip_trap

restart:
  li s1, VIRTIO_BASE
  li s2, 0
slot:
  li t0, 0                        /* an empty slot has no registers: the load traps */
  lw t0, V_MAGIC(s1)
  li t1, 0x74726976
  bne t0, t1, next_slot
  lw t0, V_DEVICE_ID(s1)
  beqz t0, next_slot

  /* reset; ACKNOWLEDGE | DRIVER; random features with VERSION_1; FEATURES_OK */
  sw zero, V_STATUS(s1)
  li t0, 3
  sw t0, V_STATUS(s1)
  li t0, 1
  sw t0, V_DEV_FEATURES_SEL(s1)
  lw t1, V_DEV_FEATURES(s1)
  RAND t2
  and t1, t1, s0
  ori t1, t1, 1                   /* VIRTIO_F_VERSION_1 is bit 32 */
  sw t0, V_DRV_FEATURES_SEL(s1)
  sw t1, V_DRV_FEATURES(s1)
  sw zero, V_DEV_FEATURES_SEL(s1)
  lw t1, V_DEV_FEATURES(s1)
  RAND t2
  and t1, t1, s0
  sw zero, V_DRV_FEATURES_SEL(s1)
  sw t1, V_DRV_FEATURES(s1)
  li t0, 11
  sw t0, V_STATUS(s1)

  li s3, 0
queue:
  la t0, qinfo
  slli t1, s3, 4
  add s5, t0, t1
  sd zero, 0(s5)                  /* size: 0 = not set up */
  sd zero, 8(s5)                  /* rings in RAM? */
  sw s3, V_QUEUE_SEL(s1)
  lw t0, V_QUEUE_NUM_MAX(s1)
  beqz t0, next_queue
  RAND t1
  li t2, 11
  remu t2, s0, t2
  li t3, 1
  sll s4, t3, t2                  /* 1 << (0..10) */
  bleu s4, t0, 1f
  mv s4, t0
1:
  srli t1, s0, 40
  andi t1, t1, 7
  bnez t1, 2f
  srli t1, s0, 20                 /* a size that is (nearly always) invalid */
  sw t1, V_QUEUE_NUM(s1)
  li t0, 1
  sw t0, V_QUEUE_READY(s1)
  j next_queue
2:
  sw s4, V_QUEUE_NUM(s1)
  li t0, RING_STRIDE
  mul t0, t0, s3
  li a1, RINGS
  add a1, a1, t0
  li t0, AVAIL_OFF
  add a2, a1, t0
  li t0, USED_OFF
  add a3, a1, t0
  RAND t0
  andi t0, s0, 15
  li t1, 4
  bgeu t0, t1, in_ram             /* three times in four */
  beqz t0, wild_rings
  li t1, 1
  beq t0, t1, past_end
  li t1, 2
  beq t0, t1, misaligned
  li a1, UART_BASE                /* rings over a device */
  li a2, UART_BASE + 0x10
  j set_rings
wild_rings:
  RAND t1
  andi a1, s0, -16
  RAND t1
  andi a2, s0, -2
  RAND t1
  andi a3, s0, -4
  j set_rings
past_end:
  li a1, RAM_END
  slli t1, s4, 3                  /* half the table past the end */
  sub a1, a1, t1
  andi a1, a1, -16
  li a3, RAM_END - 4
  j set_rings
misaligned:
  addi a1, a1, 8
  addi a2, a2, 1
  j set_rings
in_ram:
  li t0, 1
  sd t0, 8(s5)
  /* poison the whole table and the rings' headers */
  li a5, 0
3:
  slli a0, a5, 4
  add a0, a0, a1
  call poison_desc
  addi a5, a5, 1
  bltu a5, s4, 3b
  RAND t0
  sd s0, 0(a2)                    /* avail flags, 2 ring entries; idx from 0 */
  sh zero, 2(a2)
  sd s0, 0(a3)
set_rings:
  sw a1, V_DESC_LO(s1)
  srli t0, a1, 32
  sw t0, V_DESC_HI(s1)
  sw a2, V_AVAIL_LO(s1)
  srli t0, a2, 32
  sw t0, V_AVAIL_HI(s1)
  sw a3, V_USED_LO(s1)
  srli t0, a3, 32
  sw t0, V_USED_HI(s1)
  li t0, 1
  sw t0, V_QUEUE_READY(s1)
  sd s4, 0(s5)
next_queue:
  addi s3, s3, 1
  li t0, NQUEUES
  bltu s3, t0, queue

  li t0, 15                       /* DRIVER_OK */
  sw t0, V_STATUS(s1)

  li s6, STORM_ROUNDS
storm:
  li s3, 0
storm_queue:
  la t0, qinfo
  slli t1, s3, 4
  add s5, t0, t1
  ld s4, 0(s5)
  beqz s4, storm_next
  ld t0, 8(s5)
  beqz t0, notify
  li t0, RING_STRIDE
  mul t0, t0, s3
  li a1, RINGS
  add a1, a1, t0
  li t0, AVAIL_OFF
  add a2, a1, t0
  RAND t0                         /* one descriptor anew */
  remu a5, s0, s4
  slli a0, a5, 4
  add a0, a0, a1
  call poison_desc
  lhu t2, 2(a2)                   /* avail idx */
  remu t3, t2, s4
  slli t3, t3, 1
  add t3, t3, a2
  RAND t0
  addi t4, s4, 2
  remu t4, s0, t4                 /* an entry, now and then out of range */
  sh t4, 4(t3)
  RAND t0
  li t4, 1
  andi t0, s0, 63
  bnez t0, 4f
  srli t4, s0, 48                 /* the index jumps */
4:
  add t2, t2, t4
  srli t0, s0, 9
  andi t0, t0, 1
  sh t0, 0(a2)                    /* VIRTQ_AVAIL_F_NO_INTERRUPT, or not */
  slli t3, s4, 1
  add t3, t3, a2
  srli t0, s0, 24
  sh t0, 4(t3)                    /* used_event */
  fence w, w
  sh t2, 2(a2)
notify:
  fence
  sw s3, V_QUEUE_NOTIFY(s1)
storm_next:
  addi s3, s3, 1
  li t0, NQUEUES
  bltu s3, t0, storm_queue

  RAND t0                         /* a random word into the config space */
  andi t1, s0, 0xfc
  add t1, t1, s1
  srli t0, s0, 32
  sw t0, V_CONFIG(t1)
  lw t0, V_ISR(s1)
  sw t0, V_ISR_ACK(s1)
  lw t0, V_STATUS(s1)
  andi t0, t0, V_NEEDS_RESET
  bnez t0, next_slot
  addi s6, s6, -1
  bnez s6, storm

next_slot:
  li t0, 0x1000
  add s1, s1, t0
  addi s2, s2, 1
  li t0, VIRTIO_SLOTS
  bltu s2, t0, slot
  j restart

/* poison_desc(a0 = descriptor address, a5 = its index, s4 = queue size):
 * a random descriptor. Clobbers t0-t3, a4. */
poison_desc:
  RAND t0
  andi t1, s0, 15
  li t3, 0                        /* 1: the address is below RAM */
  li t2, 4
  bgeu t1, t2, 5f                 /* three times in four: into RAM */
  mv a4, s0                       /* anywhere */
  beqz t1, 6f
  li t3, 1
  li a4, 0
  li t2, 1
  beq t1, t2, 6f
  li a4, UART_BASE
  li t2, 2
  beq t1, t2, 6f
  srli t2, s0, 56                 /* across the end of RAM */
  li a4, RAM_END
  sub a4, a4, t2
  li t3, 0
  j 6f
5:
  srli t2, s0, 20                 /* into RAM, past this program and the rings */
  li t1, BUFS_SPAN
  remu t2, t2, t1
  li a4, BUFS
  add a4, a4, t2
6:
  sd a4, 0(a0)
  RAND t0
  andi t1, s0, 7
  li a4, -1                       /* 4 GiB - 1 */
  beqz t1, 7f
  srli a4, s0, 32                 /* random */
  li t2, 1
  beq t1, t2, 7f
  li a4, 0
  li t2, 2
  beq t1, t2, 7f
  srli a4, s0, 40                 /* small (and a valid indirect table length) */
  andi a4, a4, 0x7f0
7:
  /* A range from below RAM that reaches into it would report this very
   * program as free memory (free page reporting): the balloon would give
   * its frames back and the attack would end in zeros. */
  beqz t3, 9f
  li t2, 0xffff
  and a4, a4, t2
9:
  sw a4, 8(a0)
  RAND t0
  andi t1, s0, 7                  /* NEXT, WRITE, INDIRECT */
  sh t1, 12(a0)
  srli t1, s0, 8
  andi t1, t1, 3
  mv a4, a5                       /* a loop onto itself */
  beqz t1, 8f
  srli a4, s0, 16                 /* anywhere in 0..65535 */
  li t2, 1
  beq t1, t2, 8f
  remu a4, a4, s4                 /* another descriptor of the table */
8:
  sh a4, 14(a0)
  ret

  SKIP_HANDLER skip_trap

  .bss
  .align 4
qinfo: .skip 16 * NQUEUES        /* per queue: size (0: none), rings in RAM */

  TOHOST
