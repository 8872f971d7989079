package org.peerns.app

import android.app.AlertDialog
import android.content.Context
import android.graphics.Typeface
import android.util.TypedValue
import android.view.View
import android.view.ViewGroup
import android.widget.Button
import android.widget.EditText
import android.widget.ImageView
import android.widget.LinearLayout
import android.widget.ProgressBar
import android.widget.TextView

/** Small builders for framework views (no androidx, no layout resources). */
class Ui(private val context: Context) {
    /** Asks [question] first: [yes] runs [then], Cancel nothing (for what cannot be undone from here). */
    fun confirm(question: String, yes: String, then: () -> Unit) {
        AlertDialog.Builder(context)
            .setMessage(question)
            .setPositiveButton(yes) { _, _ -> then() }
            .setNegativeButton("Cancel", null)
            .show()
    }

    fun dp(value: Int) = TypedValue.applyDimension(TypedValue.COMPLEX_UNIT_DIP, value.toFloat(), context.resources.displayMetrics).toInt()

    fun column(padding: Int = 0) = LinearLayout(context).apply {
        orientation = LinearLayout.VERTICAL
        dp(padding).let { setPadding(it, it, it, it) }
    }

    fun row() = LinearLayout(context).apply { orientation = LinearLayout.HORIZONTAL }

    fun title(text: String) = TextView(context).apply {
        this.text = text
        setTextSize(TypedValue.COMPLEX_UNIT_SP, 22f)
        setPadding(0, 0, 0, dp(8))
    }

    fun label(text: String) = TextView(context).apply {
        this.text = text
        setTextSize(TypedValue.COMPLEX_UNIT_SP, 13f)
        setPadding(0, dp(16), 0, 0)
    }

    fun text(text: String = "", monospace: Boolean = false) = TextView(context).apply {
        this.text = text
        setTextSize(TypedValue.COMPLEX_UNIT_SP, 17f)
        setTextIsSelectable(true)
        if (monospace) typeface = Typeface.MONOSPACE
    }

    /** A notice line (e.g. battery saver's), hidden while there is nothing to say ([showNotice]). */
    fun notice() = text().apply {
        setTypeface(typeface, Typeface.ITALIC)
        visibility = View.GONE
    }

    fun button(text: String, onClick: () -> Unit) = Button(context).apply {
        this.text = text
        setOnClickListener { onClick() }
    }

    fun input(hint: String, text: String = "") = EditText(context).apply {
        this.hint = hint
        setText(text)
    }

    /** A horizontal progress bar at [percent] of 100. */
    fun progress(percent: Int) = ProgressBar(context, null, android.R.attr.progressBarStyleHorizontal).apply {
        max = 100
        progress = percent
    }

    /** Where a QR code is shown ([showQr]): unscaled, so its modules stay sharp; gone until then. */
    fun qrImage() = ImageView(context).apply {
        scaleType = ImageView.ScaleType.CENTER
        setPadding(0, dp(8), 0, dp(8))
        visibility = View.GONE
    }
}

/** Shows [notice] in this line, or hides the line when it is null. */
fun TextView.showNotice(notice: String?) {
    text = notice ?: ""
    visibility = if (notice == null) View.GONE else View.VISIBLE
}

/** The text fields in this view and its descendants, in layout order. */
fun View.editTexts(): List<EditText> = when (this) {
    is EditText -> listOf(this)
    is ViewGroup -> (0 until childCount).flatMap { getChildAt(it).editTexts() }
    else -> emptyList()
}

/** Adds [views] to this layout; returns it. */
fun LinearLayout.with(vararg views: View): LinearLayout = apply { views.forEach(::addView) }
