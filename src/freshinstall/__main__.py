from freshinstall.launch import run

run()
