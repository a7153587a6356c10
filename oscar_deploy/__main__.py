from oscar_deploy.cli.app import main

main()
