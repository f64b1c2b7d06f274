raise RuntimeError("setup.py refuses to build (a test fixture)")
