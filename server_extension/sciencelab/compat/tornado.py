"""tornado: routes that take precedence over those every other server extension registered.

`Application.add_handlers` appends a host rule before the application's own wildcard rule, so the
extension that registers first wins a path; there is no public way to register before another.
The proxy guard must answer jupyter-server-proxy's `/proxy/...` paths, which that extension (loaded
before ours: extensions load in alphabetical order) registers too.
"""

from tornado.web import Application

PRIVATE_NAMES = ("tornado.web:Application().default_router.rules",)


def add_handlers_first(web_app: Application, handlers: list):
    """Route `handlers` before every rule registered so far, other extensions' included."""
    web_app.add_handlers(".*$", handlers)
    # ref: https://github.com/tornadoweb/tornado/blob/v6.5.0/tornado/web.py#L2196 (`add_handlers`
    # inserts the new host rule just before the last one, the application's wildcard rule)
    rules = web_app.default_router.rules
    rules.insert(0, rules.pop(-2))


def canary():
    """Fails when the installed tornado no longer routes to the rule `add_handlers_first` put first."""
    from tornado.httputil import HTTPServerRequest
    from tornado.web import RequestHandler

    class First(RequestHandler):
        pass

    class Second(RequestHandler):
        pass

    application = Application()
    application.add_handlers(".*$", [("/path", Second)])
    add_handlers_first(application, [("/path", First)])
    request = HTTPServerRequest(method="GET", uri="/path", host="localhost")
    delegate = application.find_handler(request)
    assert delegate.handler_class is First, (
        "tornado.web.Application().default_router.rules: a rule moved first no longer takes precedence"
    )
