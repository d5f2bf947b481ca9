import CMalloc
import VigilAgent

#if canImport(Glibc)
import Glibc
#endif

// One malloc arena for every thread, before any thread starts (see ResidentMemory).
mallopt(M_ARENA_MAX, 1)
// Buffers of 256 KiB and more (journal batches and forward frames of about 1 MB, the 20 MB exposition of
// a node with a thousand containers) are mapped and unmapped on their own, so they leave no resident
// memory behind once sent. glibc's default raises that threshold to the size of the first such buffer
// freed and keeps later ones in the heap, where freed memory stays resident.
mallopt(M_MMAP_THRESHOLD, 256 << 10)

exit(await vigilMain(arguments: Array(CommandLine.arguments.dropFirst())))
