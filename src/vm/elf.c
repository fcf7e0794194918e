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

/* Headers and symbols are copied out of the file, which puts them at any
 * offset: read in place, a misaligned one would be undefined behaviour. */
static void *at(void *out, const uint8_t *data, uint64_t off, size_t n) { return memcpy(out, data + off, n); }

static void find_htif(const uint8_t *data, size_t size, const Elf64_Ehdr *eh, struct elf_image *out) {
    if (!in_file(size, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr)) || eh->e_shentsize != sizeof(Elf64_Shdr))
        return;
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        Elf64_Shdr sh, strtab;
        at(&sh, data, eh->e_shoff + (uint64_t)i * sizeof sh, sizeof sh);
        if (sh.sh_type != SHT_SYMTAB || sh.sh_link >= eh->e_shnum) continue;
        at(&strtab, data, eh->e_shoff + (uint64_t)sh.sh_link * sizeof strtab, sizeof strtab);
        if (!in_file(size, sh.sh_offset, sh.sh_size) || !in_file(size, strtab.sh_offset, strtab.sh_size)) continue;
        size_t n = sh.sh_size / sizeof(Elf64_Sym);
        const char *names = (const char *)(data + strtab.sh_offset);
        for (size_t s = 0; s < n; s++) {
            Elf64_Sym sym;
            at(&sym, data, sh.sh_offset + s * sizeof sym, sizeof sym);
            if (sym.st_name >= strtab.sh_size) continue;
            const char *name = names + sym.st_name;
            size_t maxlen = strtab.sh_size - sym.st_name;
            if (strnlen(name, maxlen) == maxlen) continue;
            if (strcmp(name, "tohost") == 0) out->tohost = sym.st_value;
            if (strcmp(name, "fromhost") == 0) out->fromhost = sym.st_value;
        }
    }
}

bool elf_load(struct p2m *mem, const uint8_t *data, size_t size, struct elf_image *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (size < sizeof(Elf64_Ehdr) || !elf_is_elf(data, size)) {
        snprintf(err, errlen, "not an ELF file");
        return false;
    }
    Elf64_Ehdr ehdr;
    const Elf64_Ehdr *eh = at(&ehdr, data, 0, sizeof ehdr);
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
    out->low = UINT64_MAX;
    unsigned loaded = 0;
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        Elf64_Phdr ph;
        at(&ph, data, eh->e_phoff + (uint64_t)i * sizeof ph, sizeof ph);
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
        if (ph.p_filesz > ph.p_memsz || !in_file(size, ph.p_offset, ph.p_filesz)) {
            snprintf(err, errlen, "ELF segment %u is truncated", i);
            return false;
        }
        if (!p2m_contains(mem, ph.p_paddr, ph.p_memsz)) {
            snprintf(err, errlen, "ELF segment %u (0x%llx, %llu bytes) is outside guest RAM", i,
                     (unsigned long long)ph.p_paddr, (unsigned long long)ph.p_memsz);
            return false;
        }
        if (!p2m_write(mem, ph.p_paddr, data + ph.p_offset, ph.p_filesz) ||
            !p2m_fill(mem, ph.p_paddr + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz)) {
            snprintf(err, errlen, "not enough machine memory to load ELF segment %u", i);
            return false;
        }
        if (ph.p_paddr < out->low) out->low = ph.p_paddr;
        if (ph.p_paddr + ph.p_memsz > out->high) out->high = ph.p_paddr + ph.p_memsz;
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
