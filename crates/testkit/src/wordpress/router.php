<?php
// Router for `php -S`: what Apache does for WordPress. Existing files are served
// as they are (PHP files run). With FLEET_TESTKIT_REWRITE=1 in the environment,
// every other path goes to index.php, which routes /wp-json/ and the pretty
// permalinks, as WordPress's rewrite rules in .htaccess do; without it, as on a
// site with plain permalinks, which has no such rules, the other paths are 404.
$root = $_SERVER['DOCUMENT_ROOT'];
$path = rawurldecode(parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH) ?? '/');
$file = $root . $path;

if (is_dir($file) && substr($path, -1) !== '/') {
    // As Apache's mod_dir does, so relative links in wp-admin resolve.
    header('Location: ' . $path . '/', true, 301);
    return true;
}
if (is_file($file) || is_file(rtrim($file, '/') . '/index.php')) {
    return false;
}
if (getenv('FLEET_TESTKIT_REWRITE') !== '1') {
    http_response_code(404);
    header('Content-Type: text/plain');
    echo "Not Found\n";
    return true;
}

$_SERVER['SCRIPT_NAME'] = '/index.php';
$_SERVER['SCRIPT_FILENAME'] = $root . '/index.php';
$_SERVER['PHP_SELF'] = '/index.php';
chdir($root);
require $root . '/index.php';
