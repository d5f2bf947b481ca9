import CMalloc
import VigilAgent

#if canImport(Glibc)
import Glibc
#endif

// One malloc arena for every thread, before any thread starts (see ResidentMemory).
mallopt(M_ARENA_MAX, 1)
// Buffers of 1 MiB and more (a node with a thousand containers writes a 20 MB exposition) are mapped and
// unmapped on their own, so they leave no resident memory behind once sent. glibc's default raises that
// threshold to the size of the first such buffer freed and keeps later ones in the heap.
mallopt(M_MMAP_THRESHOLD, 1 << 20)

exit(await vigilMain(arguments: Array(CommandLine.arguments.dropFirst())))
