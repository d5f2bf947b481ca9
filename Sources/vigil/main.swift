import VigilAgent

#if canImport(Glibc)
import Glibc
#endif

exit(await vigilMain(arguments: Array(CommandLine.arguments.dropFirst())))
