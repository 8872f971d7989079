package org.peerns.app

import android.view.View
import android.view.ViewGroup
import android.widget.LinearLayout

/**
 * The rows of a list in [container], kept in step with a list of items without rebuilding them:
 * an item equal to the one a row was made for keeps its row (and its view: selection, scroll,
 * an open long-press menu's anchor), a changed one gets a new row in place, and rows come and go
 * with their items. A chat's new line or a file's progress touches one row, not all of them.
 * Items are matched by [key]; two items with one key keep the first's row.
 */
class Rows<T : Any>(private val container: LinearLayout, private val key: (T) -> Any, private val make: (T) -> View) {
    private var shown: Map<Any, Pair<T, View>> = emptyMap()

    /** Shows [items] in order. */
    fun show(items: List<T>) {
        val next = LinkedHashMap<Any, Pair<T, View>>(items.size)
        for (item in items) {
            val k = key(item)
            if (k in next) continue
            val old = shown[k]
            next[k] = if (old != null && old.first == item) old else item to make(item)
        }
        val views = next.values.map { it.second }
        views.forEachIndexed { index, view ->
            if (container.getChildAt(index) === view) return@forEachIndexed
            (view.parent as? ViewGroup)?.removeView(view)
            container.addView(view, index)
        }
        if (container.childCount > views.size) {
            container.removeViews(views.size, container.childCount - views.size)
        }
        shown = next
    }
}
