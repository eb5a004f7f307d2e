/*
 * bcryptprimitives.dll shim for running Rust's Windows test binaries under Wine 8.
 *
 * Rust's std (1.78 and later) imports ProcessPrng from bcryptprimitives.dll at load
 * time to seed HashMap keys and the like. Wine 8.0 (Debian 12) has no such export, so
 * every Windows binary built by a current rustc dies before main with c0000135
 * ("Library bcryptprimitives.dll ... not found"). This DLL exports only ProcessPrng,
 * implemented over RtlGenRandom (advapi32!SystemFunction036), which Wine does have.
 *
 * It is built by .ci/wine-test and placed on WINEPATH by .ci/wine/runner; it is a test
 * aid only and is never shipped. Newer Wine (9.x) has ProcessPrng itself.
 */
#include <windows.h>

/* advapi32!SystemFunction036, a.k.a. RtlGenRandom. */
__declspec(dllimport) BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* As documented: always returns TRUE; fills len bytes (in ULONG-sized pieces). */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x7fffffffu ? 0x7fffffffu : (ULONG)len;
        if (!SystemFunction036(data, chunk)) {
            /* RtlGenRandom does not fail in practice; like the real ProcessPrng,
               never report failure, but do not hand back predictable bytes silently. */
            RaiseException(0xC0000001u /* STATUS_UNSUCCESSFUL */, EXCEPTION_NONCONTINUABLE, 0, NULL);
        }
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
