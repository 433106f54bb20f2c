from tuneterm.engine.process import main

raise SystemExit(main())
