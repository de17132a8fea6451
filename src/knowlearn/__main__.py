from knowlearn.cli import main

raise SystemExit(main())
