/* ELF64 loading for bare-metal programs and firmware: PT_LOAD segments go
 * to their physical addresses (p_paddr); the symbol table is searched for
 * the HTIF words tohost/fromhost. Every offset and size read from the file
 * is checked against the file before use. */
#include <elf.h>
#include <stdio.h>
#include <string.h>

#include "vm/loader.h"
#include "vm/p2m.h"

bool elf_is_elf(const uint8_t *data, size_t size) { return size >= 4 && memcmp(data, ELFMAG, SELFMAG) == 0; }

static bool in_file(size_t size, uint64_t off, uint64_t len) { return off <= size && len <= size - off; }

static void find_htif(const uint8_t *data, size_t size, const Elf64_Ehdr *eh, struct elf_image *out) {
    if (!in_file(size, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr)) || eh->e_shentsize != sizeof(Elf64_Shdr))
        return;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(data + eh->e_shoff);
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum) continue;
        const Elf64_Shdr *strtab = &sh[sh[i].sh_link];
        if (!in_file(size, sh[i].sh_offset, sh[i].sh_size) || !in_file(size, strtab->sh_offset, strtab->sh_size)) continue;
        const Elf64_Sym *sym = (const Elf64_Sym *)(data + sh[i].sh_offset);
        size_t n = sh[i].sh_size / sizeof(Elf64_Sym);
        const char *names = (const char *)(data + strtab->sh_offset);
        for (size_t s = 0; s < n; s++) {
            if (sym[s].st_name >= strtab->sh_size) continue;
            const char *name = names + sym[s].st_name;
            size_t maxlen = strtab->sh_size - sym[s].st_name;
            if (strnlen(name, maxlen) == maxlen) continue;
            if (strcmp(name, "tohost") == 0) out->tohost = sym[s].st_value;
            if (strcmp(name, "fromhost") == 0) out->fromhost = sym[s].st_value;
        }
    }
}

bool elf_load(struct p2m *mem, const uint8_t *data, size_t size, struct elf_image *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (size < sizeof(Elf64_Ehdr) || !elf_is_elf(data, size)) {
        snprintf(err, errlen, "not an ELF file");
        return false;
    }
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)data;
    if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB) {
        snprintf(err, errlen, "not a 64-bit little-endian ELF file");
        return false;
    }
    if (eh->e_machine != EM_RISCV) {
        snprintf(err, errlen, "ELF file is for machine %u, not RISC-V", eh->e_machine);
        return false;
    }
    if (eh->e_phentsize != sizeof(Elf64_Phdr) ||
        !in_file(size, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr))) {
        snprintf(err, errlen, "ELF program headers are truncated");
        return false;
    }
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(data + eh->e_phoff);
    out->low = UINT64_MAX;
    unsigned loaded = 0;
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD || ph[i].p_memsz == 0) continue;
        if (ph[i].p_filesz > ph[i].p_memsz || !in_file(size, ph[i].p_offset, ph[i].p_filesz)) {
            snprintf(err, errlen, "ELF segment %u is truncated", i);
            return false;
        }
        if (!p2m_contains(mem, ph[i].p_paddr, ph[i].p_memsz)) {
            snprintf(err, errlen, "ELF segment %u (0x%llx, %llu bytes) is outside guest RAM", i,
                     (unsigned long long)ph[i].p_paddr, (unsigned long long)ph[i].p_memsz);
            return false;
        }
        if (!p2m_write(mem, ph[i].p_paddr, data + ph[i].p_offset, ph[i].p_filesz) ||
            !p2m_fill(mem, ph[i].p_paddr + ph[i].p_filesz, 0, ph[i].p_memsz - ph[i].p_filesz)) {
            snprintf(err, errlen, "not enough machine memory to load ELF segment %u", i);
            return false;
        }
        if (ph[i].p_paddr < out->low) out->low = ph[i].p_paddr;
        if (ph[i].p_paddr + ph[i].p_memsz > out->high) out->high = ph[i].p_paddr + ph[i].p_memsz;
        loaded++;
    }
    if (!loaded) {
        snprintf(err, errlen, "ELF file has no loadable segments");
        return false;
    }
    out->entry = eh->e_entry;
    find_htif(data, size, eh, out);
    return true;
}
