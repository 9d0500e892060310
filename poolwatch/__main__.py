from poolwatch.app.cli import main

raise SystemExit(main())
