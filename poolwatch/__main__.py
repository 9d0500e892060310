from poolwatch.cli import main

raise SystemExit(main())
