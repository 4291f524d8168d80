#!/usr/bin/env bash
# JavaScript the published book needs, served by the site itself (no CDN, nothing from another host):
#  * MathJax 3 (npm `mathjax`): es5/tex-mml-chtml.js, its CHTML fonts and the TeX extensions that its
#    autoloader fetches on first use (\cancel, \color, \boldsymbol, ...);
#  * the ipywidgets embedder that shows saved widget state, e.g. tqdm.auto progress bars in executed
#    chapters (npm `@jupyter-widgets/html-manager`'s prebuilt dist/, and `requirejs`), which myst-nb
#    would otherwise load from two CDNs.
# npm puts them in .vendor/npm (ignored by git); the files the site needs are copied to
# .vendor/site/_static/, which _config.yml publishes with `html_extra_path` (so they land in
# _build/html/_static/) and names in `mathjax_path` and `nb_ipywidgets_js`. Not `html_static_path`:
# Jupyter Book 1 adds every *.js found there as a script tag to every page.
# Safe to run twice: npm runs only when a pinned version is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "site assets: npm and node (Node.js) are needed to fetch MathJax and the widget embedder for the" >&2
    echo "  book: install Node.js (Debian/Ubuntu: apt-get install npm; macOS: brew install node)." >&2
    exit 1
fi

mathjax=3.2.2
html_manager=1.0.6   # the version myst-nb 1.x loads by default (ipywidgets 8 widget state)
requirejs=2.3.7
npm_dir=.vendor/npm
site=.vendor/site/_static

version_of() { node -p "require('./$1/package.json').version" 2>/dev/null || true; }

# MathJax: a plain npm install (no dependencies).
if [ "$(version_of "$npm_dir/node_modules/mathjax")" != "$mathjax" ]; then
    echo "site assets: npm install mathjax@$mathjax (24 MB unpacked)"
    npm install --prefix "$npm_dir" --no-save --no-audit --no-fund --loglevel=error "mathjax@$mathjax"
fi
# html-manager and requirejs: only their published tarballs (an install would pull all of JupyterLab
# as dependencies, none of which the prebuilt bundle needs).
unpack() {  # unpack NAME VERSION FOLDER
    if [ "$(version_of "$3")" != "$2" ]; then
        echo "site assets: npm pack $1@$2 (one tarball)"
        local tmp
        tmp=$(mktemp -d)
        (cd "$tmp" && npm pack --silent "$1@$2" >/dev/null)
        rm -rf "$3" && mkdir -p "$3"
        tar xzf "$tmp"/*.tgz -C "$3" --strip-components=1
        rm -rf "$tmp"
    fi
}
unpack @jupyter-widgets/html-manager "$html_manager" "$npm_dir/packs/html-manager"
unpack requirejs "$requirejs" "$npm_dir/packs/requirejs"

rm -rf "$site"
src=$npm_dir/node_modules/mathjax/es5
dest=$site/mathjax
mkdir -p "$dest/output/chtml/fonts" "$dest/input/tex"
cp "$src/tex-mml-chtml.js" "$dest/"
cp -r "$src/output/chtml/fonts/woff-v2" "$dest/output/chtml/fonts/"   # every supported browser reads WOFF2
cp -r "$src/input/tex/extensions" "$dest/input/tex/"

dest=$site/widgets
mkdir -p "$dest"
cp "$npm_dir/packs/requirejs/require.js" "$dest/"
# embed-amd.js and the (Font Awesome) fonts its CSS refers to, relative to the script: WOFF2 and WOFF,
# which browsers pick before the EOT/TTF/SVG fallbacks; not the source maps or the non-AMD embed.js.
find "$npm_dir/packs/html-manager/dist" -maxdepth 1 -type f \
    \( -name embed-amd.js -o -name '*.woff2' -o -name '*.woff' \) -exec cp {} "$dest/" \;
# Loaded before require.js and embed-amd.js: the bundle finds its fonts through webpack public paths
# taken from `__jupyter_widgets_assets_path__` and from the RequireJS URLs of its modules; without
# this they are asked for relative to the page (404s).
cat > "$dest/widgets-paths.js" <<'JS'
(function () {
  var here = new URL(".", document.currentScript.src).href.replace(/\/$/, "");
  window.__jupyter_widgets_assets_path__ = here + "/";
  // read by require.js as its configuration when it loads
  window.require = {paths: {"@jupyter-widgets/html-manager/dist": here, "@jupyter-widgets": here}};
})();
JS
echo "site assets: mathjax $mathjax, html-manager $html_manager, requirejs $requirejs in $site ($(du -sh "$site" | cut -f1))"
