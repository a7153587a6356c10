from oscar_deploy.cli import main

main()
