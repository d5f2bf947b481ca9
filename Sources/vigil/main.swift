#if canImport(Glibc)
import Glibc
#endif
import VigilAgent

exit(await vigilMain(arguments: Array(CommandLine.arguments.dropFirst())))
