/* A stand-in for Windows' bcryptprimitives.dll, for smoke tests under wine only (never
 * shipped). Rust's std and getrandom seed from ProcessPrng, which Windows 10 and later have
 * and Debian 12's wine 8 does not; this answers it with RtlGenRandom (advapi32's
 * SystemFunction036), which wine has. dist/smoke-wine.sh builds it with mingw-w64 and puts
 * it in the wine prefix. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
