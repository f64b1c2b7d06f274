from freshinstall.cli import run

run()
