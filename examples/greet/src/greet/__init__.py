"""A tiny command-line tool to try freshinstall on."""
