// SVG icons are bundled as strings by the lab build; specs get a placeholder string.
module.exports = '<svg xmlns="http://www.w3.org/2000/svg"></svg>';
