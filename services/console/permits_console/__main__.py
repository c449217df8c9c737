from permits_console.main import run

run()
