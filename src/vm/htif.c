#include "vm/htif.h"

#include "vm/vm.h"

void htif_poll(struct vm *vm) {
    if (!vm->htif.tohost) return;
    uint64_t cmd;
    if (!p2m_read(&vm->mem, vm->htif.tohost, &cmd, sizeof cmd) || cmd == 0) return;
    unsigned device = (unsigned)(cmd >> 56), command = (unsigned)(cmd >> 48) & 0xff;
    uint64_t payload = cmd & ((1ull << 48) - 1);
    uint64_t zero = 0;
    p2m_write(&vm->mem, vm->htif.tohost, &zero, sizeof zero);
    if (device == 0 && (payload & 1)) {
        uint64_t code = payload >> 1;
        if (code == 0) vm_request_exit(vm, VM_EXIT_POWEROFF, 0, "test passed");
        else vm_request_exit(vm, VM_EXIT_TEST_FAIL, (int)code, "test failed with code %llu", (unsigned long long)code);
    } else if (device == 1 && command == 1) {
        uint8_t c = (uint8_t)payload;
        if (vm->console.write) vm->console.write(vm->console.ctx, &c, 1);
        uint64_t ack = (1ull << 56) | (1ull << 48);
        if (vm->htif.fromhost) p2m_write(&vm->mem, vm->htif.fromhost, &ack, sizeof ack);
    }
}
