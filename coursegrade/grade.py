import sys
def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--install-kernel"]:
        from .sandbox import install_kernel_spec
        print(install_kernel_spec())
        return 0
