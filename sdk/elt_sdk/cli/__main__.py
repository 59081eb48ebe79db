from elt_sdk.cli import main

main()
