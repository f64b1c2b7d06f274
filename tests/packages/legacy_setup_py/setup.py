from setuptools import setup

setup(
    name="legacy",
    version="1.0.0",
    packages=["legacy"],
    entry_points={"console_scripts": ["legacy = legacy:main"]},
)
