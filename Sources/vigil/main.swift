import CMalloc
import VigilAgent

#if canImport(Glibc)
import Glibc
#endif

// One malloc arena for every thread, before any thread starts (see ResidentMemory).
mallopt(M_ARENA_MAX, 1)

exit(await vigilMain(arguments: Array(CommandLine.arguments.dropFirst())))
