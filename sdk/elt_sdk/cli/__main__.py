from elt_sdk.cli import main

main(prog_name="elt-sdk")
